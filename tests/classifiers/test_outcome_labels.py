"""Outcome labels: rows relabelled by what the tiers got right, and routing scored on outcomes (PGR, APGR)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from classifiers.datasets import apply_outcomes, load_outcomes, text_key
from classifiers.evaluation import apgr, quality_retained, served_correct
from classifiers.training import load_training_rows
from router.core.errors import UnprocessableError
from tests.classifiers.test_datasets import shared  # noqa: F401  (the miniature public sets)


def record(source: str, text: str, tier: str, *, judged: bool = True, search: tuple[bool, bool] = (False, False),
           small: tuple[bool, bool] = (True, False), judgement: str = "search") -> dict[str, Any]:
    """A ``bench/outcomes.py`` record: (accepted, correct) per cheap tier."""
    return {"source": source, "key": text_key(text), "judged": judged, "judgement_tier": judgement,
            "outcome_tier": tier, "search": {"accepted": search[0], "correct": search[1]},
            "small": {"accepted": small[0], "correct": small[1]}}


def write(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_outcomes_load_only_judged_records_with_a_tier(tmp_path: Path) -> None:
    path = write(tmp_path / "outcomes.jsonl", [
        record("squad", "Which year was bridge 1 opened?", "large", search=(True, False)),  # accepted, wrong
        record("squad", "Which year was bridge 2 opened?", "large", search=(False, False)),  # rejected cleanly
        record("gsm8k", "Add 2 and 3", "large", small=(True, False), judgement="large"),
        record("gsm8k", "Add 4 and 5", "small", small=(True, True), judgement="large"),
        record("self_instruct", "Fix: me go home", "large", small=(True, False), judgement="small"),
        record("dolly", "Classify these as fruit or vegetable: apple, leek", "small", judged=False),
        {**record("nq_open", "who sang hey jude", "medium")},
        {"source": "gsm8k", "outcome_tier": "large"},
    ])
    assert load_outcomes(path) == {
        # lookups stay lookups: what the index holds is the index's business, and a rejection escalates
        ("squad", text_key("Which year was bridge 1 opened?")): "search",
        ("squad", text_key("Which year was bridge 2 opened?")): "search",
        ("gsm8k", text_key("Add 2 and 3")): "large",
        ("gsm8k", text_key("Add 4 and 5")): "small",  # the small model was right, and its gate said so
        ("self_instruct", text_key("Fix: me go home")): "large",  # judged small, answered wrong
    }
    with pytest.raises(UnprocessableError, match="outcomes file not found"):
        load_outcomes(tmp_path / "missing.jsonl")


def test_apply_outcomes_relabels_by_source_and_text_and_keeps_the_judgement() -> None:
    rows = [{"text": "Who wrote Hamlet?", "tier": "search", "source": "dolly"},
            {"text": "Who wrote Hamlet?", "tier": "search", "source": "squad"},  # same text, other source: untouched
            {"text": "Fix: me go home", "tier": "small", "source": "self_instruct"}]
    outcomes = {("dolly", text_key("Who wrote Hamlet?")): "large", ("self_instruct", text_key("Fix: me go home")): "small"}
    assert apply_outcomes(rows, outcomes) == 1
    assert rows[0] == {"text": "Who wrote Hamlet?", "tier": "large", "source": "dolly", "judgement_tier": "search",
                       "label_from": "outcome"}
    assert rows[1]["tier"] == "search" and "label_from" not in rows[1]
    assert rows[2]["tier"] == "small" and rows[2]["label_from"] == "outcome"


def test_training_rows_take_outcome_labels_where_measured(shared: Path, tmp_path: Path) -> None:  # noqa: F811
    seed_dir = tmp_path / "seed"
    seed_dir.mkdir()
    (seed_dir / "seed_small.jsonl").write_text(json.dumps({"text": "Say hi", "tier": "small"}) + "\n")
    outcomes = write(tmp_path / "outcomes.jsonl", [
        record("squad", "Which year was bridge 1 opened?", "large", search=(True, False)),
        record("squad", "Which year was bridge 2 opened?", "search", search=(True, True)),
        record("gsm8k", "Ann has 3 apples and buys 4 more bags of 6. How many now?", "small", small=(True, True),
               judgement="large"),
    ])
    before, _ = load_training_rows(seed_dir, shared, seed=0, cap=100)
    after, stats = load_training_rows(seed_dir, shared, seed=0, cap=100, outcomes=outcomes)
    assert [r["text"] for r in before] == [r["text"] for r in after]  # the same rows, other labels
    tiers = {(r["source"], r["text"]): r["tier"] for r in after}
    assert tiers[("squad", "Which year was bridge 1 opened?")] == "search"  # a lookup stays a lookup
    assert tiers[("gsm8k", "Ann has 3 apples and buys 4 more bags of 6. How many now?")] == "small"
    assert tiers[("squad", "Which year was bridge 3 opened?")] == "search"  # no outcome: judgement label
    assert stats["outcome_rows"] == 3 and stats["outcome_changed"] == 1


def test_a_gate_rejected_answer_escalates_and_an_accepted_one_is_served() -> None:
    wrong_but_rejected = record("squad", "q", "large", search=(False, True), small=(False, True))
    assert served_correct(wrong_but_rejected, "search") == (True, True)  # rejected: the large tier answers
    accepted_wrong = record("squad", "q", "large", search=(True, False), small=(True, False))
    assert served_correct(accepted_wrong, "search") == (False, False)
    assert served_correct(accepted_wrong, "small") == (False, False)
    assert served_correct(accepted_wrong, "large") == (True, True)


def test_quality_retained_and_pgr_on_known_outcomes() -> None:
    outcomes = [
        record("squad", "a", "search", search=(True, True), small=(True, False)),
        record("squad", "b", "small", search=(False, False), small=(True, True)),
        record("gsm8k", "c", "large", search=(False, False), small=(True, False)),
        record("gsm8k", "d", "large", search=(False, False), small=(True, False)),
    ]
    # all-small: 1 of 4 right. Routing a→search (right), b→small (right), c→small (accepted, wrong), d→large.
    result = quality_retained(outcomes, ["search", "small", "small", "large"])
    assert result["accuracy"] == 0.75 and result["all_small_accuracy"] == 0.25
    assert result["pgr"] == pytest.approx((0.75 - 0.25) / 0.75, abs=1e-4) and result["large_share"] == 0.25
    everything_large = quality_retained(outcomes, ["large"] * 4)
    assert everything_large["pgr"] == 1.0 and everything_large["large_share"] == 1.0
    with pytest.raises(UnprocessableError):
        quality_retained(outcomes, ["large"])


def test_apgr_is_the_area_under_pgr_against_the_large_share() -> None:
    assert apgr([]) == 0.5  # the straight line from the small tier alone to the large tier alone
    assert apgr([(0.5, 1.0)]) == 0.75  # full quality at half the large calls
    assert apgr([(0.5, 0.2), (0.5, 1.0)]) == 0.75  # the better point at one share counts
    assert apgr([(0.2, 0.0)]) == pytest.approx(0.4)  # worse than the line


def test_frugal_eval_scores_the_rows_with_outcomes_on_what_the_tiers_got_right(tiny_model: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from router.cli import app

    config = tmp_path / "frugal.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\ndemo_index: false\nclassifier: {{model_dir: {tiny_model}}}\n")
    data = write(tmp_path / "labelled.jsonl", [
        {"text": "Who discovered radium?", "tier": "search"},
        {"text": "Translate to Italian: see you soon", "tier": "small"},
        {"text": "Write a Go program that tails a log file and alerts on errors.", "tier": "large"},
    ])
    outcomes = write(tmp_path / "outcomes.jsonl", [
        record("squad", "Who discovered radium?", "large", search=(True, False), small=(True, False)),
        record("self_instruct", "Translate to Italian: see you soon", "small", small=(True, True)),
    ])
    runner = CliRunner()
    result = runner.invoke(app, ["eval", "--config", str(config), "--data", str(data), "--outcomes", str(outcomes)])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["n"] == 3 and metrics["quality"]["n"] == 2 and metrics["quality"]["all_small_accuracy"] == 0.5
    bad = runner.invoke(app, ["eval", "--config", str(config), "--data", str(data), "--outcomes", str(data) + "x"])
    assert bad.exit_code != 0 and "outcomes file not found" in bad.output
