"""Evaluation of a classifier with a policy, in the JSON shape `frugal eval` prints.

What matters is asymmetric: ``under_routing`` (share of requests labelled large that were sent
lower) destroys trust; ``kept_off_large`` (share of search and small requests not sent to the
large tier) is where the savings come from. Accuracy and the confusion matrix tell the rest.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from classifiers.model import Classifier
from router.core import TIERS, Message
from router.core.errors import UnprocessableError
from router.core.policy import Policy

_RANK: dict[str, int] = {tier: i for i, tier in enumerate(TIERS)}


def routing_metrics(
    truth: Sequence[str], decided: Sequence[str], latencies_ms: Sequence[float] | None = None
) -> dict[str, Any]:
    """Accuracy, per-tier precision/recall, confusion, under/over-routing and kept-off-large."""
    n = len(truth)
    confusion: dict[str, dict[str, int]] = {t: {p: 0 for p in TIERS} for t in TIERS}
    for t, p in zip(truth, decided, strict=True):
        confusion[t][p] += 1
    per_tier = {}
    for tier in TIERS:
        tp = confusion[tier][tier]
        predicted = sum(confusion[t][tier] for t in TIERS)
        actual = sum(confusion[tier].values())
        per_tier[tier] = {
            "precision": tp / predicted if predicted else None,
            "recall": tp / actual if actual else None,
            "support": actual,
        }
    large_total = sum(confusion["large"].values())
    rest_total = n - large_total
    lower = sum(1 for t, p in zip(truth, decided, strict=True) if _RANK[p] < _RANK[t])
    higher = sum(1 for t, p in zip(truth, decided, strict=True) if _RANK[p] > _RANK[t])
    kept = sum(1 for t, p in zip(truth, decided, strict=True) if t != "large" and p != "large")
    result: dict[str, Any] = {
        "n": n,
        "accuracy": sum(1 for t, p in zip(truth, decided, strict=True) if t == p) / n if n else None,
        "per_tier": per_tier,
        "confusion": confusion,
        "under_routing": (large_total - confusion["large"]["large"]) / large_total if large_total else None,
        "over_routing": sum(confusion[t]["large"] for t in TIERS if t != "large") / rest_total
        if rest_total else None,
        "routed_lower": lower / n if n else None,
        "routed_higher": higher / n if n else None,
        "kept_off_large": kept / rest_total if rest_total else None,
    }
    if latencies_ms:
        result["latency_ms"] = {
            "p50": float(np.percentile(latencies_ms, 50)), "p99": float(np.percentile(latencies_ms, 99)),
        }
    return result


def _messages(row: dict[str, Any]) -> list[Message]:
    if row.get("messages"):
        return [Message(role=m["role"], content=m["content"]) for m in row["messages"]]
    text = row.get("text", row.get("prompt"))
    if not isinstance(text, str) or not text.strip():
        raise UnprocessableError("every evaluation row needs a non-empty `text` (or `prompt`)")
    return [Message(role="user", content=text)]


def evaluate(classifier: Classifier, policy: Policy, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Route every row one at a time (as the server does) and report the routing metrics."""
    if not rows:
        raise UnprocessableError("no rows to evaluate")
    truth, decided, latencies = [], [], []
    for number, row in enumerate(rows, start=1):
        if row.get("tier") not in TIERS:
            raise UnprocessableError(f"row {number}: tier must be one of {list(TIERS)}, got {row.get('tier')!r}")
        messages = _messages(row)
        started = time.perf_counter()
        decision = policy.decide(classifier.predict(messages))
        latencies.append((time.perf_counter() - started) * 1000.0)
        truth.append(row["tier"])
        decided.append(decision.tier)
    metrics = routing_metrics(truth, decided, latencies)
    metrics["variant"] = classifier.variant
    metrics["thresholds"] = dict(policy.thresholds)
    return metrics


def classify_line(classifier: Classifier, policy: Policy, text: str) -> dict[str, Any]:
    """One `frugal classify` output line: ``{"tier": ..., "scores": {...}}``."""
    prediction = classifier.predict([Message(role="user", content=text)])
    decision = policy.decide(prediction)
    return {"tier": decision.tier, "scores": {tier: round(prediction.scores[tier], 6) for tier in TIERS}}
