"""`frugal train`, then `frugal classify` and `frugal eval` on the model it wrote (static variant, fixture data)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from classifiers.config import shipped_model_dir
from router.cli import app

runner = CliRunner()


def test_train_then_classify_and_eval_with_the_trained_model(fixture_seed_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    result = runner.invoke(app, [
        "train", "--seed-dir", str(fixture_seed_dir), "--seed-only", "--variant", "static",
        "--static-from", str(shipped_model_dir() / "static"), "--out", str(out), "--seed", "3",
    ])
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert manifest["seed"] == 3 and list(manifest["variants"]) == ["static"]
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert not list(out.rglob("*.pkl")) and not list(out.rglob("*.pickle"))

    config = tmp_path / "frugal.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\ndemo_index: false\nclassifier: {{model_dir: {out}}}\n")
    classified = runner.invoke(app, ["classify", "--config", str(config), "Who discovered radium?"])
    assert classified.exit_code == 0, classified.output
    line = json.loads(classified.stdout)
    assert set(line) == {"tier", "scores"} and line["tier"] in line["scores"]

    data = tmp_path / "labelled.jsonl"
    data.write_text("\n".join(json.dumps(row) for row in [
        {"text": "Who discovered radium?", "tier": "search"},
        {"text": "Translate to Italian: see you soon", "tier": "small"},
        {"text": "Write a Go program that tails a log file and alerts on errors.", "tier": "large"},
    ]) + "\n")
    evaluated = runner.invoke(app, ["eval", "--config", str(config), "--data", str(data)])
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads(evaluated.stdout)
    assert metrics["n"] == 3 and metrics["variant"] == "static"
    assert sum(sum(row.values()) for row in metrics["confusion"].values()) == 3


def test_train_refuses_an_unknown_variant_and_missing_seed_folder(fixture_seed_dir: Path, tmp_path: Path) -> None:
    bad_variant = runner.invoke(app, ["train", "--seed-dir", str(fixture_seed_dir), "--seed-only",
                                      "--variant", "bert", "--out", str(tmp_path / "m")])
    assert bad_variant.exit_code == 2 and "valid" in bad_variant.output
    missing = runner.invoke(app, ["train", "--seed-dir", str(tmp_path / "absent"), "--seed-only",
                                  "--variant", "static", "--out", str(tmp_path / "m")])
    assert missing.exit_code == 2 and "seed folder not found" in missing.output
