"""MiniLM through ONNX Runtime: the torch vectors and decisions, an export made once and rebuilt if damaged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backends.base import Message
from classifiers import ClassifierConfig, load_classifier
from classifiers.config import MINILM_SHA256
from classifiers.encoders import SentenceTransformerEncoder, resolve_runtime
from classifiers.onnx_runtime import ONNX_FILE, export_folder, onnx_runtime_available
from router.assets import AssetError
from router.policy import Policy
from tests.classifiers.test_shipped_model import CLEAR_CASES, PREVIOUS_LARGE_EXCHANGE

TEXTS = [*CLEAR_CASES, "ok", "Refactor this service: " + "def handler(event):\n    return event['body']\n" * 40]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder of our own for this test."""
    monkeypatch.setenv("FRUGAL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.slow
def test_onnx_gives_the_torch_vectors_and_the_same_decisions(cache: Path) -> None:
    torch_encoder = SentenceTransformerEncoder(None, runtime="torch")
    onnx_encoder = SentenceTransformerEncoder(None, runtime="onnx")
    assert onnx_encoder.runtime == "onnx" and onnx_encoder.identity == torch_encoder.identity
    reference, got = torch_encoder.encode(TEXTS), onnx_encoder.encode(TEXTS)
    assert got.shape == reference.shape == (len(TEXTS), 384)
    assert np.min(np.sum(reference * got, axis=1)) > 0.9999
    one_by_one = np.stack([onnx_encoder.encode([text])[0] for text in TEXTS])  # batch padding changes nothing
    assert np.max(np.abs(one_by_one - got)) < 1e-4

    served = load_classifier(ClassifierConfig(variant="minilm"))  # 'auto' picks ONNX Runtime for float32
    assert served.encoder.runtime == "onnx"
    exact = load_classifier(ClassifierConfig(variant="minilm", runtime="torch"))
    policy = Policy()
    assert [policy.decide(p).tier for p in served.predict_texts(list(CLEAR_CASES))] == list(CLEAR_CASES.values())
    for a, b in zip(exact.predict_texts(TEXTS), served.predict_texts(TEXTS), strict=True):
        assert a.scores == pytest.approx(b.scores, abs=1e-3)
    follow = served.predict([*PREVIOUS_LARGE_EXCHANGE, Message("user", "and why?")])
    assert follow.follow_up and policy.decide(follow).tier != "search"


@pytest.mark.slow
def test_the_export_is_made_once_and_a_damaged_one_is_made_again(cache: Path) -> None:
    target = export_folder(MINILM_SHA256) / ONNX_FILE
    assert not target.exists()
    first = SentenceTransformerEncoder(None, runtime="onnx")
    assert target.is_file() and target.is_relative_to(cache)
    written = target.stat().st_mtime_ns
    SentenceTransformerEncoder(None, runtime="onnx")
    assert target.stat().st_mtime_ns == written  # reused, not exported again
    assert not list(target.parent.glob("*.partial*"))

    target.write_bytes(target.read_bytes()[:1000])  # a truncated file, as after a full disk
    again = SentenceTransformerEncoder(None, runtime="onnx")
    assert target.stat().st_size > 1_000_000
    assert np.allclose(again.encode(["hello there"]), first.encode(["hello there"]), atol=1e-5)


def test_runtime_choices_are_checked() -> None:
    assert onnx_runtime_available()  # both are dependencies: a missing one is an install error, not a skip
    assert resolve_runtime("auto", "float32") == "onnx"
    assert resolve_runtime("auto", "bfloat16") == "torch"  # bf16 kernels are torch's
    assert resolve_runtime("torch", "float32") == "torch"
    with pytest.raises(AssetError, match="float32 only"):
        resolve_runtime("onnx", "bfloat16")
    with pytest.raises(AssetError, match="valid"):
        resolve_runtime("tensorrt", "float32")
    with pytest.raises(ValueError):
        ClassifierConfig(runtime="tensorrt")  # type: ignore[arg-type]
