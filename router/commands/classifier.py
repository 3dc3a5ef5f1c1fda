"""``frugal classify``, ``frugal train`` and ``frugal eval``: the tier classifier and the policy on text."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from router.commands.common import (
    ConfigOpt,
    DataDirOpt,
    echo_json,
    fail,
    jsonl_texts,
    labelled_rows,
    live_thresholds,
    settings_from,
)
from router.core.errors import FrugalError


def classify(
    text: Annotated[str | None, typer.Argument(help="text to classify (or use --input)")] = None,
    input_file: Annotated[Path | None, typer.Option("--input", help="JSONL with `text` or `prompt` per line")] = None,
    config: ConfigOpt = None, data_dir: DataDirOpt = None,
) -> None:
    """Print the tier and scores for each input as one JSON line."""
    from classifiers import load_classifier
    from classifiers.evaluation import classify_line
    from router.core.policy import Policy, all_specs, policy_values
    from router.thresholds import ThresholdStore

    if (text is None) == (input_file is None):
        fail(ValueError("give either TEXT or --input FILE.jsonl"))
    try:
        settings = settings_from(config, data_dir)
        from router.services import prepare_environment

        prepare_environment()
        classifier = load_classifier(settings.classifier)
        policy = Policy(policy_values(live_thresholds(settings, ThresholdStore(all_specs(), settings.thresholds))))
        for line in [text] if text is not None else jsonl_texts(input_file):  # type: ignore[arg-type]
            echo_json(classify_line(classifier, policy, line))
    except FrugalError as exc:
        fail(exc)


def train(
    config: ConfigOpt = None, data_dir: DataDirOpt = None,
    seed_dir: Annotated[Path, typer.Option(help="our seed set")] = Path("classifiers/data"),
    shared_data: Annotated[Path, typer.Option(help="public datasets folder")] = Path("../shared/data"),
    out: Annotated[Path | None, typer.Option(help="output model directory (default: the shipped model)")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    encoder: Annotated[str | None, typer.Option(help="sentence-transformers model name or path")] = None,
    variant: Annotated[str | None, typer.Option(help="train one variant only: static or minilm")] = None,
    static_from: Annotated[Path | None, typer.Option(help="reuse this distilled static table")] = None,
    seed_only: Annotated[bool, typer.Option(help="train on the seed set alone (no public sets)")] = False,
    outcomes: Annotated[Path | None, typer.Option(
        help="outcome labels (bench/outcomes.py) that relabel the rows they cover; default: the shipped "
             "classifiers/data/labels/outcomes.jsonl")] = None,
    judgement_only: Annotated[bool, typer.Option(help="ignore outcome labels: judgement labels only")] = False,
) -> None:
    """Train the tier classifier (seeded, reproducible) and write it without pickle."""
    from classifiers.training import train as run_training
    from router.services import prepare_environment

    prepare_environment()
    from classifiers.config import shipped_model_dir
    from classifiers.datasets import OUTCOMES_FILE

    shipped = OUTCOMES_FILE if OUTCOMES_FILE.exists() else None
    try:
        manifest = run_training(seed_dir=seed_dir, shared_data_dir=None if seed_only else shared_data,
                                out_dir=out or shipped_model_dir(), seed=seed, encoder=encoder, variant=variant,
                                static_from=static_from, outcomes=None if judgement_only else outcomes or shipped)
    except (FrugalError, FileNotFoundError) as exc:
        fail(exc)
    echo_json(manifest)


def evaluate(
    data: Annotated[Path, typer.Option("--data", help="JSONL with `text` and `tier` per line (e.g. "
                                       "config/labelled.example.jsonl, which no training data holds)")],
    config: ConfigOpt = None, data_dir: DataDirOpt = None,
    outcomes: Annotated[Path | None, typer.Option(
        help="bench/outcomes.py records: rows they cover are also scored on what the tiers got right "
             "(quality: accuracy under the routing vs all-small and all-large, PGR)")] = None,
) -> None:
    """Evaluate the classifier and policy on labelled data; print JSON metrics."""
    from classifiers import load_classifier
    from classifiers.evaluation import evaluate as run_eval
    from router.core.policy import Policy, all_specs, policy_values
    from router.services import prepare_environment
    from router.thresholds import ThresholdStore

    try:
        settings = settings_from(config, data_dir)
        prepare_environment()
        rows = labelled_rows(data)
        classifier = load_classifier(settings.classifier)
        policy = Policy(policy_values(live_thresholds(settings, ThresholdStore(all_specs(), settings.thresholds))))
        measured = None
        if outcomes is not None:
            from classifiers.datasets import read_outcomes

            measured = {r["key"]: r for r in read_outcomes(outcomes)}
        echo_json(run_eval(classifier, policy, rows, measured))
    except FrugalError as exc:
        fail(exc)
