"""Calibration runs: gather scores (classifier on labelled text, or the ledger's logged scores) and energy
per tier, then let ``router.admin.threshold_search`` choose thresholds. Shared by the CLI and ``POST /admin/calibrate``.

Energy per request and tier, in order of preference: an explicit override; the ledger's mean over the
last 30 days of successful, non-escalated requests that ended on that tier (when it has at least
``MIN_LEDGER_REQUESTS``); for the large tier the estimator's counterfactual (the configured large model
with the median observed output length, EcoLogits); else the defaults below, mid-range figures of
DESIGN's table for this host (search 1e-5 Wh, small 2e-3 Wh, large 0.02 Wh).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from router.admin.threshold_search import (
    evaluate,
    optimise_labelled,
    scores_array,
    threshold_for_share,
)
from router.core import TIERS
from router.core.errors import LedgerUnavailableError, TierUnavailableError, UnprocessableError
from router.ledger.interface import LedgerStore

DEFAULT_ENERGY_WH = {"search": 1e-5, "small": 2e-3, "large": 0.02}
MIN_LEDGER_REQUESTS = 20
LEDGER_WINDOW = timedelta(days=30)
BATCH = 256
MAX_WH_PER_REQUEST = 1e6  # far above any real request; keeps sums over many examples finite


@dataclass
class CalibrationRequest:
    """What to calibrate on: labelled examples (text, tier) or a target large-tier share of logged traffic."""

    examples: list[tuple[str, str]] | None = None
    large_share: float | None = None
    max_under_routing: float = 0.02
    since: datetime | None = None
    limit: int = 10_000
    energy_wh: dict[str, float] = field(default_factory=dict)

    def mode(self) -> str:
        """``labelled`` or ``traffic``; a 422 unless exactly one source is given."""
        if (self.examples is None) == (self.large_share is None):
            raise UnprocessableError(
                "give either labelled examples (--data FILE.jsonl / \"examples\") or a target large-tier share "
                "(--large-share / \"large_share\"), not both or neither", param="examples")
        if self.examples is not None and not self.examples:
            raise UnprocessableError("no labelled examples to calibrate on", param="examples")
        bad = {t: wh for t, wh in self.energy_wh.items() if t not in TIERS or not 0 <= wh <= MAX_WH_PER_REQUEST}
        if bad:
            raise UnprocessableError(f"energy overrides need a tier ({', '.join(TIERS)}) and a Wh per request "
                                     f"between 0 and {MAX_WH_PER_REQUEST:g}; got {bad}", param="energy_wh")
        return "labelled" if self.examples is not None else "traffic"


def tier_energy(ledger: LedgerStore | None, estimator: Any, overrides: Mapping[str, float]) -> dict[str, dict[str, Any]]:
    """Energy per request for each tier (Wh) and where the figure came from."""
    since = datetime.now(UTC).replace(tzinfo=None) - LEDGER_WINDOW
    observed = ledger.tier_energy_means(since) if ledger is not None else {}
    result: dict[str, dict[str, Any]] = {}
    for tier in TIERS:
        seen = observed.get(tier)
        if tier in overrides:
            result[tier] = {"wh": float(overrides[tier]), "source": "override"}
        elif seen is not None and seen.requests >= MIN_LEDGER_REQUESTS:
            result[tier] = {"wh": seen.mean_wh,
                            "source": f"ledger: mean of {seen.requests} non-escalated requests, last 30 days"}
        elif tier == "large" and estimator is not None:
            cf = estimator.counterfactual(0)
            result[tier] = {"wh": cf.energy_wh.value, "source": (
                f"estimator: {estimator.config.counterfactual} with {estimator.counterfactual_output_tokens} "
                "output tokens (EcoLogits)")}
        else:
            result[tier] = {"wh": DEFAULT_ENERGY_WH[tier], "source": "default"}
    return result


def logged_scores(ledger: LedgerStore, since: datetime | None, limit: int) -> np.ndarray:
    """Scores of the most recent ``limit`` classified (not forced) requests, as an (n, 3) array."""
    return np.array(ledger.logged_scores(since, limit), dtype=float).reshape(-1, 3)


def classify_texts(classifier: Any, texts: Sequence[str]) -> np.ndarray:
    """The classifier's scores for single-turn texts, in batches."""
    if classifier is None:
        raise TierUnavailableError("the classifier is not loaded, so labelled calibration cannot run")
    scores: list[Mapping[str, float]] = []
    for start in range(0, len(texts), BATCH):
        scores.extend(p.scores for p in classifier.predict_texts(list(texts[start:start + BATCH])))
    return scores_array(scores)


def run_calibration(request: CalibrationRequest, *, classifier: Any, ledger: LedgerStore | None, estimator: Any,
                    current: Mapping[str, float]) -> dict[str, Any]:
    """Choose thresholds for ``request``; the result names current and proposed outcomes and the figures used."""
    mode = request.mode()
    energy = tier_energy(ledger, estimator, request.energy_wh)
    wh = {tier: info["wh"] for tier, info in energy.items()}
    now = {"route.large": float(current["route.large"]), "route.search": float(current["route.search"])}
    result: dict[str, Any] = {"mode": mode, "energy_wh_per_request": energy}
    if mode == "labelled":
        assert request.examples is not None
        labels = [tier for _text, tier in request.examples]
        bad = sorted({tier for tier in labels if tier not in TIERS})
        if bad:
            raise UnprocessableError(f"unknown tier labels {bad}; valid: {list(TIERS)}", param="examples")
        scores = classify_texts(classifier, [text for text, _tier in request.examples])
        proposed = optimise_labelled(scores, labels, wh, request.max_under_routing)
        result.update(labels=dict(Counter(labels)), max_under_routing=request.max_under_routing,
                      current=evaluate(scores, now, wh, labels).to_dict())
    else:
        assert request.large_share is not None
        if ledger is None:
            raise LedgerUnavailableError("traffic calibration needs the ledger")
        scores = logged_scores(ledger, request.since, request.limit)
        if len(scores) == 0:
            raise UnprocessableError("the ledger holds no classified requests to calibrate on yet", param="large_share")
        large_t, _share = threshold_for_share(scores[:, 2], request.large_share)
        proposed = evaluate(scores, {"route.large": large_t, "route.search": now["route.search"]}, wh)
        result.update(target_large_share=request.large_share, current=evaluate(scores, now, wh).to_dict())
    result.update(requests=len(scores), proposed=proposed.to_dict(), thresholds=proposed.thresholds)
    return result
