"""The README's labelled example (config/labelled.example.jsonl) is held out: no training data holds its rows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from classifiers.datasets import LABELS_DIR, load_public, load_seed

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "labelled.example.jsonl"
SHARED = REPO.parent / "shared" / "data"


def normalised(text: str) -> str:
    """Lower case, words only: what makes two texts the same request."""
    return " ".join(re.findall(r"\w+", text.lower()))


def example_rows() -> list[dict[str, str]]:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip() and not line.startswith("#")]


def test_the_file_says_what_it_is_and_every_row_is_labelled() -> None:
    header = EXAMPLE.read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("#") and "not part of any training data" in header
    rows = example_rows()
    assert {row["tier"] for row in rows} == {"search", "small", "large"}
    assert all(isinstance(row["text"], str) and row["text"].strip() for row in rows)
    assert len({normalised(row["text"]) for row in rows}) == len(rows)  # no repeats


def test_no_row_is_in_the_seed_set_or_our_reviewed_labels() -> None:
    seed, _ = load_seed(REPO / "classifiers" / "data")
    ours = [row["text"] for row in seed]
    for path in LABELS_DIR.glob("*.jsonl"):
        ours += [json.loads(line).get("text", "") for line in path.read_text(encoding="utf-8").splitlines() if line]
    words = [set(normalised(text).split()) for text in ours if text]
    for row in example_rows():
        mine = set(normalised(row["text"]).split())
        closest = max(len(mine & other) / len(mine | other) for other in words)
        assert closest < 0.8, f"{row['text']!r} is nearly a training row"


@pytest.mark.slow
def test_no_row_is_in_any_public_set_the_training_reads() -> None:
    assert SHARED.is_dir(), f"the public sets are missing: {SHARED}"
    public = {normalised(row["text"]) for row in load_public(SHARED, cap=10**9)}
    assert len(public) > 10_000
    leaked = [row["text"] for row in example_rows() if normalised(row["text"]) in public]
    assert not leaked
