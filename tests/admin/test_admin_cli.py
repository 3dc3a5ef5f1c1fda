"""The `frugal thresholds` and `frugal calibrate` commands, and POST /admin/calibrate, on a real SQLite ledger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from router.cli import app
from router.core.policy import GATE_THRESHOLDS
from router.ledger.store import Ledger
from tests.admin.conftest import DEFAULT_LARGE, app_client, scored_row, wait_for

SEARCH_GATE_DEFAULT = next(spec.default for spec in GATE_THRESHOLDS if spec.name == "search.min_confidence")

runner = CliRunner()

# Logged P(large) of ten classified requests: a 20 % large share falls between .8 and .7 (.75), 50 % between .5
# and .4 (.45). Forced requests carry no scores and must be ignored, as must rows without scores.
LOGGED = [0.95, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]

LABELLED = [
    ("What year did the Berlin Wall fall?", "search"),
    ("Who wrote Pride and Prejudice?", "search"),
    ("Translate to French: good morning, how are you?", "small"),
    ("Fix the grammar: she don't like apples", "small"),
    ("Summarize this: The meeting moved to Tuesday because the room was booked.", "small"),
    ("Write a Python function that parses ISO dates and handles time zones, with unit tests.", "large"),
    ("A train leaves at 3pm at 80 km/h and another at 4pm at 100 km/h; when does the second catch up?", "large"),
    ("Compare the trade-offs of microservices and a monolith for a five-person startup and recommend one.", "large"),
]


def invoke(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def seed(data_dir: Path) -> None:
    ledger = Ledger.open(f"sqlite:///{(data_dir / 'ledger.sqlite3').resolve()}")
    try:
        rows = [scored_row(i, (0.5 * (1 - p), 0.5 * (1 - p), p)) for i, p in enumerate(LOGGED)]
        rows.append(scored_row(98, (0.0, 0.0, 0.99), forced=True, route="large"))
        rows.append(scored_row(99, None))
        ledger.record_many(rows)
    finally:
        ledger.close()


def test_thresholds_set_show_history_and_a_running_server_picks_it_up(make_settings: Any) -> None:
    settings = make_settings(thresholds_poll_s=0.2)
    data = str(settings.data_dir)
    with app_client(settings) as client:
        out = json.loads(invoke("thresholds", "set", "route.large=0.3", "route.search=0.6", "--reason", "from the cli",
                                "--data-dir", data).stdout)
        assert out["version"] == 1 and out["actor"].startswith("cli:")
        assert out["changes"]["route.large"] == {"old": DEFAULT_LARGE, "new": 0.3}
        wait_for(lambda: client.get("/admin/thresholds").json()["thresholds"]["route.large"]["value"] == 0.3, timeout=3)
    shown = json.loads(invoke("thresholds", "show", "--data-dir", data).stdout)
    assert shown["route.large"]["value"] == 0.3 and shown["search.min_confidence"]["value"] == SEARCH_GATE_DEFAULT
    bad = runner.invoke(app, ["thresholds", "set", "route.large=0.4", "nope=1", "--reason", "x", "--data-dir", data])
    assert bad.exit_code == 2 and "unknown threshold 'nope'" in bad.output and "route.search [0.0, 1.0]" in bad.output
    assert runner.invoke(app, ["thresholds", "set", "route.large", "--reason", "x", "--data-dir", data]).exit_code == 2
    assert json.loads(invoke("thresholds", "show", "--data-dir", data).stdout)["route.large"]["value"] == 0.3
    history = invoke("thresholds", "history", "--data-dir", data).stdout.splitlines()
    assert len(history) == 1 and f"route.large {DEFAULT_LARGE} -> 0.3" in history[0] and "(from the cli)" in history[0]
    as_json = [json.loads(line) for line in invoke("thresholds", "history", "--json", "--data-dir", data).stdout.splitlines()]
    assert as_json[0]["reason"] == "from the cli"


def test_show_does_not_create_a_ledger(tmp_path: Path) -> None:
    invoke("thresholds", "show", "--data-dir", str(tmp_path / "fresh"))
    assert not (tmp_path / "fresh" / "ledger.sqlite3").exists()


@pytest.mark.parametrize(("share", "expected", "achieved"), [("0.2", 0.75, 0.2), ("0.5", 0.45, 0.5)])
def test_calibrate_from_traffic_hits_the_target_share(make_settings: Any, share: str, expected: float,
                                                      achieved: float) -> None:
    settings = make_settings()
    settings.data_dir.mkdir(parents=True)
    seed(settings.data_dir)
    result = runner.invoke(app, ["calibrate", "--large-share", share, "--data-dir", str(settings.data_dir)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["mode"] == "traffic" and out["requests"] == 10 and out["applied"] is None
    assert out["thresholds"] == {"route.large": expected, "route.search": 0.5}
    assert out["proposed"]["shares"]["large"] == pytest.approx(achieved)
    assert out["current"]["shares"]["large"] == pytest.approx(0.8)  # default route.large (0.15): eight of ten
    assert "proposed: route.large=" in result.stderr
    shown = json.loads(invoke("thresholds", "show", "--data-dir", str(settings.data_dir)).stdout)
    assert shown["route.large"]["value"] == DEFAULT_LARGE  # a dry run changes nothing


def test_calibrate_apply_over_the_api_changes_live_thresholds_and_audits(make_settings: Any) -> None:
    settings = make_settings()
    settings.data_dir.mkdir(parents=True)
    seed(settings.data_dir)
    with app_client(settings) as client:
        dry = client.post("/admin/calibrate", json={"large_share": 0.2}).json()
        assert dry["thresholds"]["route.large"] == 0.75 and dry["applied"] is None
        applied = client.post("/admin/calibrate", json={"large_share": 0.2, "apply": True, "reason": "aim for 20 %"})
        assert applied.status_code == 200, applied.text
        assert applied.json()["applied"]["changes"]["route.large"] == {"old": DEFAULT_LARGE, "new": 0.75}
        assert client.app.state.services.thresholds.get("route.large") == 0.75
        assert client.get("/admin/thresholds/history").json()["history"][0]["reason"] == "aim for 20 %"
        for body in ({}, {"large_share": 0.2, "examples": [{"text": "hi", "tier": "small"}]}, {"large_share": 2},
                     {"examples": []}, {"examples": [{"text": "hi", "tier": "huge"}]},
                     {"large_share": 0.2, "energy_wh": {"large": -1}}, {"large_share": 0.2, "energy_wh": {"huge": 1}},
                     {"examples": [{"text": "hi", "tier": "small"}], "energy_wh": {"large": 1e308}}):
            response = client.post("/admin/calibrate", json=body)
            assert response.status_code == 422, (body, response.text)
    empty = make_settings(data_dir=settings.data_dir.parent / "empty")
    with app_client(empty) as client:
        response = client.post("/admin/calibrate", json={"large_share": 0.2})
        assert response.status_code == 422 and "no classified requests" in response.json()["error"]["message"]


def test_calibrate_from_labels_respects_the_under_routing_bound(make_settings: Any, tmp_path: Path) -> None:
    from classifiers import load_classifier
    from router.admin.threshold_search import optimise_labelled, scores_array

    settings = make_settings()
    data = tmp_path / "labelled.jsonl"
    data.write_text("".join(json.dumps({"text": t, "tier": tier}) + "\n" for t, tier in LABELLED), encoding="utf-8")
    energy = ["--energy-wh", "search=0.00001", "--energy-wh", "small=0.002", "--energy-wh", "large=0.02"]
    result = runner.invoke(app, ["calibrate", "--data", str(data), "--max-under-routing", "0", *energy,
                                 "--data-dir", str(settings.data_dir)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["mode"] == "labelled" and out["labels"] == {"search": 2, "small": 3, "large": 3}
    assert {tier: e["source"] for tier, e in out["energy_wh_per_request"].items()} == dict.fromkeys(
        ("search", "small", "large"), "override")
    assert out["proposed"]["under_routing"] == 0.0
    if out["current"]["under_routing"] == 0.0:  # the current thresholds are feasible: the optimum is no worse
        assert out["proposed"]["energy_wh_per_request"] <= out["current"]["energy_wh_per_request"] + 1e-12
    # The command's answer is the optimiser's on the classifier's own scores.
    classifier = load_classifier(settings.classifier)
    scores = scores_array([p.scores for p in classifier.predict_texts([t for t, _ in LABELLED])])
    expected = optimise_labelled(scores, [tier for _, tier in LABELLED],
                                 {"search": 1e-5, "small": 0.002, "large": 0.02}, 0.0)
    assert out["thresholds"] == expected.thresholds
    with app_client(settings) as client:
        body = {"examples": [{"text": t, "tier": tier} for t, tier in LABELLED], "max_under_routing": 0.0,
                "energy_wh": {"search": 1e-5, "small": 0.002, "large": 0.02}, "apply": True}
        api = client.post("/admin/calibrate", json=body).json()
        assert api["thresholds"] == expected.thresholds
        live = client.get("/admin/thresholds").json()["thresholds"]
        assert live["route.large"]["value"] == expected.thresholds["route.large"]
        assert client.get("/admin/thresholds/history").json()["history"][0]["reason"] == "calibrate (labelled)"


def test_energy_per_tier_comes_from_the_ledger_when_it_has_enough_requests(tmp_path: Path) -> None:
    from router.admin.calibration import MIN_LEDGER_REQUESTS, tier_energy

    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    try:
        rows = [scored_row(i, (0.9, 0.05, 0.05), route="search", energy_wh=2e-6) for i in range(MIN_LEDGER_REQUESTS)]
        rows += [scored_row(100 + i, (0.9, 0.05, 0.05), route="search", energy_wh=1.0, escalations=1) for i in range(5)]
        rows += [scored_row(200 + i, (0.1, 0.8, 0.1), route="small", energy_wh=0.5) for i in range(3)]  # too few
        rows += [scored_row(300 + i, (0.1, 0.1, 0.8), route="large", energy_wh=0.5, minutes_ago=60 * 24 * 40)
                 for i in range(MIN_LEDGER_REQUESTS)]  # too old
        ledger.record_many(rows)
        energy = tier_energy(ledger, None, {"small": 0.004})
    finally:
        ledger.close()
    assert energy["search"]["wh"] == pytest.approx(2e-6) and energy["search"]["source"].startswith("ledger")
    assert energy["small"] == {"wh": 0.004, "source": "override"}
    assert energy["large"] == {"wh": 0.02, "source": "default"}


def test_calibrate_on_outcomes_takes_the_measured_labels(make_settings: Any, tmp_path: Path) -> None:
    from classifiers.datasets import text_key

    settings = make_settings()
    data = tmp_path / "labelled.jsonl"
    data.write_text("".join(json.dumps({"text": t, "tier": tier}) + "\n" for t, tier in LABELLED), encoding="utf-8")
    wrong = {"accepted": True, "correct": False}  # the small model answered, its gate took it, it was wrong
    outcomes = tmp_path / "outcomes.jsonl"
    outcomes.write_text("".join(json.dumps({
        "source": "mine", "key": text_key(t), "judged": True, "judgement_tier": "small", "outcome_tier": "large",
        "search": {"accepted": False, "correct": False}, "small": wrong}) + "\n"
        for t, tier in LABELLED if tier == "small"), encoding="utf-8")
    energy = ["--energy-wh", "search=0.00001", "--energy-wh", "small=0.002", "--energy-wh", "large=0.02"]
    result = runner.invoke(app, ["calibrate", "--data", str(data), "--outcomes", str(outcomes), *energy,
                                 "--data-dir", str(settings.data_dir)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["outcome_labels"] == 3 and out["labels"] == {"search": 2, "large": 6}
    alone = runner.invoke(app, ["calibrate", "--outcomes", str(outcomes), "--data-dir", str(settings.data_dir)])
    assert alone.exit_code != 0 and "give both" in alone.output
