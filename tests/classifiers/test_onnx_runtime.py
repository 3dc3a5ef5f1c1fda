"""MiniLM through ONNX Runtime: the torch vectors and decisions, an export made once and rebuilt if damaged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classifiers import ClassifierConfig, encoders, load_classifier
from classifiers.config import MINILM_SHA256
from classifiers.encoders import (
    SentenceTransformerEncoder,
    bf16_in_cpuinfo,
    resolve_precision,
    resolve_runtime,
)
from classifiers.onnx_runtime import ONNX_FILE, export_folder, onnx_runtime_available
from router.core import Message
from router.core.assets import AssetError
from router.core.policy import Policy
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

    # runtime 'auto' picks ONNX Runtime for float32 on every CPU; precision 'auto' is the CPU's business
    # (test_auto_precision_and_runtime_follow_the_cpu_rule), so it is fixed here.
    served = load_classifier(ClassifierConfig(variant="minilm", precision="float32"))
    assert (served.encoder.precision, served.encoder.runtime) == ("float32", "onnx")
    exact = load_classifier(ClassifierConfig(variant="minilm", runtime="torch", precision="float32"))
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


# /proc/cpuinfo as each kind of CPU the project supports prints it (flags lines abridged).
CPUINFO = {
    "avx2 only (Haswell)": ("flags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi2\n", False),
    "avx-512, no bf16 (Ice Lake)": ("flags\t\t: avx2 avx512f avx512dq avx512bw avx512vl avx512_vnni\n", False),
    "zen 4": ("vendor_id\t: AuthenticAMD\nflags\t\t: avx2 avx512f avx512_bf16 avx512_vnni\n", True),
    "sapphire rapids": ("flags\t\t: avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n", True),
    "amx without the avx-512 flag listed": ("flags\t\t: avx2 amx_bf16 amx_tile\n", True),
    "arm64 with bf16 (Graviton 3)": ("Features\t: fp asimd sve bf16 i8mm\nCPU implementer\t: 0x41\n", False),
    "a flag name inside another line": ("model name\t: not avx512_bf16 really\nflags\t\t: avx2\n", False),
    "unreadable": ("", False),
}


@pytest.mark.parametrize("cpu", CPUINFO)
def test_bf16_is_read_from_the_flags_line(cpu: str) -> None:
    text, native = CPUINFO[cpu]
    assert bf16_in_cpuinfo(text) is native


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_follows_the_cpu(native: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoders, "cpu_has_bf16", lambda: native)
    expected = "bfloat16" if native else "float32"
    assert resolve_precision("auto") == expected
    assert resolve_runtime("auto", resolve_precision("auto")) == ("torch" if native else "onnx")
    assert resolve_precision("float32") == "float32" and resolve_precision("bfloat16") == "bfloat16"
    with pytest.raises(AssetError, match="valid"):
        resolve_precision("int4")


@pytest.mark.slow
@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_and_runtime_follow_the_cpu_rule(
    native: bool, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The served default ('auto', 'auto') on a CPU with and without native bf16, whichever CPU runs the test."""
    monkeypatch.setattr(encoders, "cpu_has_bf16", lambda: native)
    served = load_classifier(ClassifierConfig(variant="minilm"))
    assert (served.encoder.precision, served.encoder.runtime) == (
        ("bfloat16", "torch") if native else ("float32", "onnx"))
    # decisions: float32 here and in the test above; bfloat16 scores stay within 0.05 of float32
    # (test_shipped_model), which can move a case near a threshold, so they are not asserted per case
    scores = served.predict_texts(list(CLEAR_CASES))
    assert all(abs(sum(p.scores.values()) - 1) < 1e-3 for p in scores)
