"""Training on a small fixture: files, manifest, reproducibility, no pickle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from classifiers.config import shipped_model_dir
from classifiers.features import FEATURE_NAMES
from classifiers.training import train
from router.core.errors import UnprocessableError


def test_training_writes_manifest_head_and_static_table(tiny_model: Path) -> None:
    manifest = json.loads((tiny_model / "manifest.json").read_text())
    assert manifest["labels"] == ["search", "small", "large"]
    assert manifest["features"] == list(FEATURE_NAMES)
    assert manifest["data"]["rows"] == 45
    assert manifest["data"]["by_source"] == {"seed": {"search": 15, "small": 15, "large": 15}}
    spec = manifest["variants"]["static"]
    assert len(spec["encoder"]["sha256"]) == 64
    assert (tiny_model / spec["head"]).exists()
    assert (tiny_model / "static" / "embeddings.npz").exists()
    metrics = spec["metrics"]
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["n"] == 45
    with np.load(tiny_model / spec["head"], allow_pickle=False) as head:  # readable without pickle
        assert head["weights"].shape[0] == 3
        lexical = "lexical_terms" in head
        assert lexical == (spec["lexical_weight"] > 0)  # the chosen weight decides whether the file has the block
        if lexical:
            assert head["lexical_weights"].shape == (3, spec["lexical_terms"])
    from classifiers.training import LEXICAL_GRID
    assert spec["lexical_weight"] in LEXICAL_GRID


def test_training_is_reproducible(tiny_model: Path, fixture_seed_dir: Path, tmp_path: Path) -> None:
    again = train(seed_dir=fixture_seed_dir, shared_data_dir=None, out_dir=tmp_path, variant="static",
                  static_from=shipped_model_dir() / "static")
    with np.load(tiny_model / "head_static.npz") as a, np.load(tmp_path / "head_static.npz") as b:
        assert np.array_equal(a["weights"], b["weights"])
        assert float(a["temperature"]) == float(b["temperature"])
    assert again["variants"]["static"]["metrics"] == json.loads(
        (tiny_model / "manifest.json").read_text())["variants"]["static"]["metrics"]


def test_overrides_drop_and_relabel_seed_lines(fixture_seed_dir: Path, tmp_path: Path) -> None:
    from classifiers.datasets import load_seed
    from tests.classifiers.conftest import write_seed

    folder = write_seed(tmp_path / "seed")
    (folder / "overrides.jsonl").write_text(
        json.dumps({"text": "What is 7 times 8?", "drop": True}) + "\n"
        + json.dumps({"text": "thanks a lot!", "tier": "small"}) + "\n"
        + json.dumps({"text": "Who invented the telephone?", "tier": "small"}) + "\n"
    )
    (folder / "seed_search.jsonl").open("a").write('{"text": "broken line\n')
    rows, stats = load_seed(folder)
    texts = {r["text"]: r["tier"] for r in rows}
    assert "What is 7 times 8?" not in texts
    assert texts["Who invented the telephone?"] == "small"
    assert stats["dropped"] == 1 and stats["invalid"] == 1


def test_unknown_variant_and_missing_data_are_clear_errors(fixture_seed_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(UnprocessableError, match="valid"):
        train(seed_dir=fixture_seed_dir, shared_data_dir=None, out_dir=tmp_path, variant="bert")
    with pytest.raises(UnprocessableError, match="not found"):
        train(seed_dir=fixture_seed_dir, shared_data_dir=tmp_path / "absent", out_dir=tmp_path, variant="static",
              static_from=shipped_model_dir() / "static")
