"""The `frugal` CLI contracts from DESIGN.md, run in process with typer's runner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from router.cli import app

runner = CliRunner()

ECHO_CONFIG = """\
data_dir: {data}
demo_index: false
search: {{backend: echo, options: {{prefix: "search: "}}}}
small: {{backend: echo, options: {{prefix: "small: "}}}}
large: {{backend: echo, options: {{prefix: "large: "}}}}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "frugal.yaml"
    path.write_text(ECHO_CONFIG.format(data=tmp_path / "data"), encoding="utf-8")
    return path


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_classify_prints_one_json_line_per_input(config: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in.jsonl"
    inputs.write_text('{"text": "Who painted the Mona Lisa?"}\n\n{"prompt": "Fix this Rust borrow error: ..."}\n',
                      encoding="utf-8")
    lines = [json.loads(line) for line in run("classify", "--config", str(config), "--input", str(inputs)).splitlines()]
    assert len(lines) == 2
    for line in lines:
        assert set(line) == {"tier", "scores"}
        assert line["tier"] in {"search", "small", "large"}
        assert set(line["scores"]) == {"search", "small", "large"}
        assert sum(line["scores"].values()) == pytest.approx(1.0, abs=1e-3)
    single = json.loads(run("classify", "--config", str(config), "Who painted the Mona Lisa?"))
    assert single == lines[0]


def test_classify_rejects_bad_input_clearly(config: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"nope": 1}\n', encoding="utf-8")
    result = runner.invoke(app, ["classify", "--config", str(config), "--input", str(bad)])
    assert result.exit_code == 2 and "bad.jsonl:2" in result.output
    neither = runner.invoke(app, ["classify", "--config", str(config)])
    assert neither.exit_code == 2


def test_ask_json_prints_the_frugal_object_and_answer_and_records_it(config: Path, tmp_path: Path) -> None:
    body = json.loads(run("ask", "--config", str(config), "--json", "--model", "frugal-small", "hello there"))
    assert body["answer"] == "small: hello there"
    assert body["route"] == "small" and body["forced"] is True
    assert {"request_id", "attempts", "energy_wh", "co2e_g", "avoided_wh", "sources"} <= set(body)
    report = json.loads(run("report", "--config", str(config), "--format", "json"))
    assert report["requests"] == 1
    assert report["by_tier"]["small"]["requests"] == 1
    mine = json.loads(run("report", "--config", str(config), "--format", "json", "--client", "cli"))
    assert mine["requests"] == 1 and mine["period"]["client"] == "cli"  # `frugal ask` records itself as "cli"
    assert json.loads(run("report", "--config", str(config), "--format", "json", "--client", "a-team"))["requests"] == 0


def test_eval_prints_metrics_json(config: Path, tmp_path: Path) -> None:
    data = tmp_path / "labelled.jsonl"
    rows = [{"text": "When did the Berlin Wall fall?", "tier": "search"},
            {"text": "Translate to French: good morning", "tier": "small"},
            {"text": "Write a Python function that merges k sorted lists, with tests", "tier": "large"}]
    data.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    metrics = json.loads(run("eval", "--config", str(config), "--data", str(data)))
    for key in ("accuracy", "per_tier", "under_routing", "over_routing", "kept_off_large", "confusion", "latency_ms"):
        assert key in metrics
    assert 0.0 <= metrics["accuracy"] <= 1.0


def test_index_add_and_stats(config: Path, tmp_path: Path) -> None:
    docs = tmp_path / "docs.jsonl"
    docs.write_text(json.dumps({"title": "Zorblax", "text": "The Zorblax festival is held every March in Quillton."})
                    + "\n", encoding="utf-8")
    summary = json.loads(run("index", "add", "--config", str(config), str(docs)))
    assert summary["docs"] == 1
    stats = json.loads(run("index", "stats", "--config", str(config)))
    assert stats["docs"] == 1 and stats["exists"] is True
    missing = runner.invoke(app, ["index", "add", "--config", str(config), str(tmp_path / "absent.md")])
    assert missing.exit_code == 2 and "not found" in missing.output


def test_thresholds_show_lists_every_threshold(config: Path) -> None:
    shown = json.loads(run("thresholds", "show", "--config", str(config)))
    assert {"route.large", "route.search", "search.min_confidence", "small.min_confidence"} <= set(shown)
    assert all(spec["min"] <= spec["value"] <= spec["max"] for spec in shown.values())


def test_report_formats(config: Path, tmp_path: Path) -> None:
    run("ask", "--config", str(config), "--model", "frugal-large", "x")
    csv_text = run("report", "--config", str(config), "--format", "csv")
    assert csv_text.strip()
    out = tmp_path / "r.html"
    run("report", "--config", str(config), "--format", "html", "--out", str(out))
    assert out.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
    bad = runner.invoke(app, ["report", "--config", str(config), "--format", "pdf"])
    assert bad.exit_code == 2


def test_calibrate_power_without_its_extra_says_what_to_install(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "codecarbon" else real(name, *a))
    result = runner.invoke(app, ["calibrate-power", "--config", str(config), "--seconds", "2"])
    assert result.exit_code == 2
    assert "frugal-router[power]" in result.output


def test_every_command_takes_config_and_data_dir(config: Path, tmp_path: Path) -> None:
    import typer.main

    def leaves(group: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
        if hasattr(group, "commands"):
            return [leaf for name, sub in group.commands.items() for leaf in leaves(sub, (*path, name))]
        return [(path, group)]

    commands = leaves(typer.main.get_command(app))
    assert len(commands) > 10
    for path, command in commands:
        options = {opt for param in command.params for opt in getattr(param, "opts", [])}
        assert {"--config", "--data-dir"} <= options, " ".join(path)
