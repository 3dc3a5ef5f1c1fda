"""Save/load round trip of a trained model, and refusal of a model whose encoder does not match."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from classifiers import ClassifierConfig, load_classifier
from router.core import Message
from router.core.assets import AssetError
from router.core.errors import InvalidRequestError, UnprocessableError


def test_round_trip_predicts_probabilities(tiny_model: Path) -> None:
    classifier = load_classifier(ClassifierConfig(model_dir=tiny_model))
    predictions = classifier.predict_texts(["Who painted Guernica?", "Write a Rust function that parses JSON."])
    for prediction in predictions:
        assert set(prediction.scores) == {"search", "small", "large"}
        assert sum(prediction.scores.values()) == pytest.approx(1.0)
    single = classifier.predict([Message("user", "Who painted Guernica?")])
    assert single.scores == pytest.approx(predictions[0].scores)
    assert single.text == "Who painted Guernica?"


def test_refuses_a_static_table_whose_hash_differs(tiny_model: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(tiny_model, copy)
    table = copy / "static" / "embeddings.npz"
    data = bytearray(table.read_bytes())
    data[-100] ^= 0xFF
    table.write_bytes(bytes(data))
    with pytest.raises(AssetError, match="sha256 mismatch"):
        load_classifier(ClassifierConfig(model_dir=copy))


def test_refuses_a_minilm_head_bound_to_another_encoder(tiny_model: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(tiny_model, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["variants"]["minilm"] = {
        "encoder": {"kind": "sentence-transformers", "id": "sentence-transformers/all-MiniLM-L6-v2",
                    "sha256": "0" * 64},
        "head": "head_static.npz",
    }
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(AssetError, match="sha256 mismatch"):
        load_classifier(ClassifierConfig(model_dir=copy, variant="minilm"))


def test_missing_model_unknown_variant_and_empty_text(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(AssetError, match="frugal train"):
        load_classifier(ClassifierConfig(model_dir=tmp_path))
    with pytest.raises(UnprocessableError, match="valid"):
        load_classifier(ClassifierConfig(model_dir=tiny_model, variant="minilm"))
    classifier = load_classifier(ClassifierConfig(model_dir=tiny_model))
    with pytest.raises(InvalidRequestError):
        classifier.predict([Message("system", "be nice")])


def test_config_forbids_unknown_keys() -> None:
    with pytest.raises(ValueError):
        ClassifierConfig(modle_dir="x")  # type: ignore[call-arg]
