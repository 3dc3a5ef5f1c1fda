"""The `frugal eval` metrics and `frugal classify` line contracts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from classifiers import ClassifierConfig, load_classifier
from classifiers.evaluation import classify_line, evaluate, routing_metrics
from router.core.errors import UnprocessableError
from router.core.policy import Policy


def test_routing_metrics_by_hand() -> None:
    truth = ["large", "large", "large", "large", "small", "small", "search", "search"]
    decided = ["large", "large", "large", "small", "large", "small", "search", "small"]
    m = routing_metrics(truth, decided, [1.0, 2.0, 3.0])
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["under_routing"] == pytest.approx(1 / 4)
    assert m["over_routing"] == pytest.approx(1 / 4)
    assert m["kept_off_large"] == pytest.approx(3 / 4)
    assert m["confusion"]["large"]["small"] == 1 and m["confusion"]["search"]["small"] == 1
    assert m["per_tier"]["large"] == {"precision": 0.75, "recall": 0.75, "support": 4}
    assert m["per_tier"]["search"]["precision"] == 1.0 and m["per_tier"]["search"]["recall"] == 0.5
    assert m["latency_ms"]["p50"] == 2.0


def test_evaluate_output_contract(tiny_model: Path) -> None:
    classifier = load_classifier(ClassifierConfig(model_dir=tiny_model))
    rows = [
        {"text": "Who discovered oxygen?", "tier": "search"},
        {"text": "Translate to German: good night", "tier": "small"},
        {"text": "Write a C program that reverses a linked list in place.", "tier": "large"},
        {"tier": "large", "messages": [
            {"role": "user", "content": "Prove there are infinitely many primes."},
            {"role": "assistant", "content": "Suppose finitely many..."},
            {"role": "user", "content": "why?"}]},
    ]
    metrics = evaluate(classifier, Policy(), rows)
    json.dumps(metrics)
    for key in ("accuracy", "per_tier", "confusion", "under_routing", "over_routing", "kept_off_large",
                "latency_ms"):
        assert key in metrics
    assert set(metrics["latency_ms"]) == {"p50", "p99"}
    assert sum(sum(row.values()) for row in metrics["confusion"].values()) == 4
    with pytest.raises(UnprocessableError, match="tier"):
        evaluate(classifier, Policy(), [{"text": "hello", "tier": "medium"}])
    with pytest.raises(UnprocessableError):
        evaluate(classifier, Policy(), [])


def test_classify_line_shape(tiny_model: Path) -> None:
    classifier = load_classifier(ClassifierConfig(model_dir=tiny_model))
    line = classify_line(classifier, Policy(), "Who painted The Starry Night?")
    assert set(line) == {"tier", "scores"}
    assert line["tier"] in {"search", "small", "large"}
    assert set(line["scores"]) == {"search", "small", "large"}
    assert sum(line["scores"].values()) == pytest.approx(1.0, abs=1e-5)
    json.dumps(line)
