"""Evaluation of a classifier with a policy, in the JSON shape `frugal eval` prints.

What matters is asymmetric: ``under_routing`` (share of requests labelled large that were sent
lower) destroys trust; ``kept_off_large`` (share of search and small requests not sent to the
large tier) is where the savings come from. Accuracy and the confusion matrix tell the rest.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
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


def evaluate(
    classifier: Classifier, policy: Policy, rows: Sequence[dict[str, Any]],
    outcomes: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Route every row one at a time (as the server does) and report the routing metrics.

    With ``outcomes`` (``bench/outcomes.py`` records by text key), the rows that have one are also scored on
    what the tiers got right: ``quality`` (``quality_retained``).
    """
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
    if outcomes is not None:
        from classifiers.datasets import text_key

        measured = [(outcomes.get(text_key(row.get("text", row.get("prompt", "")))), tier)
                    for row, tier in zip(rows, decided, strict=True)]
        matched = [(record, tier) for record, tier in measured if record is not None]
        metrics["quality"] = quality_retained([r for r, _ in matched], [t for _, t in matched]) if matched else None
    metrics["variant"] = classifier.variant
    metrics["thresholds"] = dict(policy.thresholds)
    return metrics


def classify_line(classifier: Classifier, policy: Policy, text: str) -> dict[str, Any]:
    """One `frugal classify` output line: ``{"tier": ..., "scores": {...}}``."""
    prediction = classifier.predict([Message(role="user", content=text)])
    decision = policy.decide(prediction)
    return {"tier": decision.tier, "scores": {tier: round(prediction.scores[tier], 6) for tier in TIERS}}


def served_correct(outcome: Mapping[str, Any], first: str) -> tuple[bool, bool]:
    """(right, answered by the large tier) for a prompt first routed to ``first``, from its measured outcome.

    A search or small answer its gate accepts is served as it is; one it rejects escalates to the large tier
    (``search_escalates_to: large``), whose answer is assumed right: there is no large model to check offline.
    """
    if first == "large":
        return True, True
    result = outcome.get(first)
    if not result:
        raise UnprocessableError(f"the outcome record has no {first} result")
    return (bool(result["correct"]), False) if result["accepted"] else (True, True)


def quality_retained(outcomes: Sequence[Mapping[str, Any]], decided: Sequence[str]) -> dict[str, Any]:
    """Right answers under a routing against all-small and all-large, and the performance gap recovered (PGR).

    ``outcomes`` are ``bench/outcomes.py`` records (both cheap tiers' acceptance and verdict per prompt),
    ``decided`` the first tier the routing picked for each. All-small serves every small answer as it is
    (``frugal-small``); all-large is assumed right throughout. PGR = (routing − all-small) / (all-large −
    all-small): 1 is the large tier's quality, 0 the small tier's (RouteLLM's measure).
    """
    if len(outcomes) != len(decided) or not outcomes:
        raise UnprocessableError("quality_retained needs one decision per outcome record, and at least one")
    served = [served_correct(o, tier) for o, tier in zip(outcomes, decided, strict=True)]
    right = sum(ok for ok, _ in served) / len(served)
    weak = sum(bool(o["small"]["correct"]) for o in outcomes) / len(outcomes)
    return {
        "n": len(served), "accuracy": round(right, 4), "all_small_accuracy": round(weak, 4),
        "all_large_accuracy": 1.0, "all_large_assumed": True,
        "pgr": round((right - weak) / (1.0 - weak), 4) if weak < 1.0 else None,
        "large_share": round(sum(large for _, large in served) / len(served), 4),
    }


def apgr(points: Sequence[tuple[float, float]]) -> float:
    """Average PGR over the large tier's share of requests, 0 to 1: the area under PGR(share).

    ``points`` are (large share, PGR) pairs from a threshold sweep; the curve is closed with (0, 0), the small
    tier alone, and (1, 1), the large tier alone, and where two points share a large share the better PGR counts.
    """
    best: dict[float, float] = {0.0: 0.0, 1.0: 1.0}
    for share, pgr in points:
        best[share] = max(best.get(share, pgr), pgr)
    curve = sorted(best.items())
    area = sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in itertools.pairwise(curve))
    return round(area, 4)
