"""Calibration runs: gather scores (classifier on labelled text, or the ledger's logged scores) and energy
per tier, then let ``router.admin.calibrate`` choose thresholds. Shared by the CLI and ``POST /admin/calibrate``.

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
from sqlalchemy import Engine, MetaData, and_, func, select
from sqlalchemy.exc import SQLAlchemyError

from router.admin.calibrate import TIERS, evaluate, optimise_labelled, scores_array, threshold_for_share
from router.core.errors import LedgerUnavailableError, TierUnavailableError, UnprocessableError
from router.ledger.schema import requests_table

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


def tier_energy(engine: Engine | None, estimator: Any, overrides: Mapping[str, float]) -> dict[str, dict[str, Any]]:
    """Energy per request for each tier (Wh) and where the figure came from."""
    observed = _ledger_means(engine) if engine is not None else {}
    result: dict[str, dict[str, Any]] = {}
    for tier in TIERS:
        if tier in overrides:
            result[tier] = {"wh": float(overrides[tier]), "source": "override"}
        elif observed.get(tier, (0, 0.0))[0] >= MIN_LEDGER_REQUESTS:
            count, mean = observed[tier]
            result[tier] = {"wh": mean, "source": f"ledger: mean of {count} non-escalated requests, last 30 days"}
        elif tier == "large" and estimator is not None:
            cf = estimator.counterfactual(0)
            result[tier] = {"wh": cf.energy_wh.value, "source": (
                f"estimator: {estimator.config.counterfactual} with {estimator.counterfactual_output_tokens} "
                "output tokens (EcoLogits)")}
        else:
            result[tier] = {"wh": DEFAULT_ENERGY_WH[tier], "source": "default"}
    return result


def _ledger_means(engine: Engine) -> dict[str, tuple[int, float]]:
    t = requests_table(MetaData())
    since = datetime.now(UTC).replace(tzinfo=None) - LEDGER_WINDOW
    query = (select(t.c.route, func.count(), func.avg(t.c.energy_wh))
             .where(and_(t.c.created_at >= since, t.c.status < 400, t.c.escalations == 0, t.c.route.is_not(None)))
             .group_by(t.c.route))
    try:
        with engine.connect() as conn:
            return {row[0]: (int(row[1]), float(row[2] or 0.0)) for row in conn.execute(query)}
    except SQLAlchemyError as exc:
        raise LedgerUnavailableError(f"cannot read per-tier energy from the ledger: {exc}") from exc


def logged_scores(engine: Engine, since: datetime | None, limit: int) -> np.ndarray:
    """Scores of the most recent ``limit`` classified (not forced) requests, as an (n, 3) array."""
    t = requests_table(MetaData())
    query = (select(t.c.score_search, t.c.score_small, t.c.score_large)
             .where(and_(t.c.score_large.is_not(None), t.c.score_search.is_not(None), t.c.forced.is_(False)))
             .order_by(t.c.id.desc()).limit(max(1, int(limit))))
    if since is not None:
        query = query.where(t.c.created_at >= (since.astimezone(UTC).replace(tzinfo=None) if since.tzinfo else since))
    try:
        with engine.connect() as conn:
            rows = conn.execute(query).all()
    except SQLAlchemyError as exc:
        raise LedgerUnavailableError(f"cannot read logged scores from the ledger: {exc}") from exc
    return np.array([[float(v) for v in row] for row in rows], dtype=float).reshape(-1, 3)


def classify_texts(classifier: Any, texts: Sequence[str]) -> np.ndarray:
    """The classifier's scores for single-turn texts, in batches."""
    if classifier is None:
        raise TierUnavailableError("the classifier is not loaded, so labelled calibration cannot run")
    scores: list[Mapping[str, float]] = []
    for start in range(0, len(texts), BATCH):
        scores.extend(p.scores for p in classifier.predict_texts(list(texts[start:start + BATCH])))
    return scores_array(scores)


def run_calibration(request: CalibrationRequest, *, classifier: Any, engine: Engine | None, estimator: Any,
                    current: Mapping[str, float]) -> dict[str, Any]:
    """Choose thresholds for ``request``; the result names current and proposed outcomes and the figures used."""
    mode = request.mode()
    energy = tier_energy(engine, estimator, request.energy_wh)
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
        if engine is None:
            raise LedgerUnavailableError("traffic calibration needs the ledger")
        scores = logged_scores(engine, request.since, request.limit)
        if len(scores) == 0:
            raise UnprocessableError("the ledger holds no classified requests to calibrate on yet", param="large_share")
        large_t, _share = threshold_for_share(scores[:, 2], request.large_share)
        proposed = evaluate(scores, {"route.large": large_t, "route.search": now["route.search"]}, wh)
        result.update(target_large_share=request.large_share, current=evaluate(scores, now, wh).to_dict())
    result.update(requests=len(scores), proposed=proposed.to_dict(), thresholds=proposed.thresholds)
    return result
