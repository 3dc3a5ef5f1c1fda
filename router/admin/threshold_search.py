"""Choosing ``route.large`` and ``route.search`` from tier scores: pure arithmetic, no I/O.

The policy (``router.core.policy.Policy``, whose ``route_ranks`` routes every row here) sends a request to
``large`` when P(large) >= route.large, else to ``search`` when P(search) >= route.search, else to
``small``. Only the order of the scores matters, so
the candidate thresholds are the cut points between neighbouring observed scores (the midpoint
between two neighbours, 0-side and 1-side midpoints at the ends): every distinct routing the policy
can produce on the data is tried exactly once.

Cost model for labelled data (expected energy per request): a request sent to tier ``r`` whose label
is ``t`` costs ``E[r]`` when ``r`` is ``t`` or above (over-routing wastes ``E[r] - E[t]``), and the
whole escalation chain ``E[r] + ... + E[t]`` when ``r`` is below ``t`` (its gate is assumed to catch it,
the optimistic case; under-routing is bounded separately because a gate may not). Under-routing is
the share of ``large``-labelled requests sent to a cheaper tier; over-routing is the share of all
requests sent to a tier above their label. Ties in energy go to the lower ``route.large`` (more
requests on the large tier: safer) and the higher ``route.search`` (fewer search attempts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from router.core import RANK, TIERS
from router.core.policy import Policy


@dataclass(frozen=True)
class ThresholdOutcome:
    """What a pair of thresholds does to a set of requests."""

    thresholds: dict[str, float]
    requests: int
    shares: dict[str, float]
    energy_wh_per_request: float
    under_routing: float | None
    over_routing: float | None

    def to_dict(self) -> dict[str, object]:
        """The outcome as JSON."""
        return {"thresholds": self.thresholds, "requests": self.requests, "shares": self.shares,
                "energy_wh_per_request": self.energy_wh_per_request, "under_routing": self.under_routing,
                "over_routing": self.over_routing}


def scores_array(scores: Sequence[Mapping[str, float]]) -> np.ndarray:
    """An (n, 3) array of (search, small, large) scores."""
    return np.array([[float(s[tier]) for tier in TIERS] for s in scores], dtype=float).reshape(-1, 3)


def cost_matrix(energy: Mapping[str, float]) -> np.ndarray:
    """cost[routed, label]: the energy of a request sent to ``routed`` that needs ``label``."""
    e = [float(energy[tier]) for tier in TIERS]
    cost = np.zeros((3, 3))
    for r in range(3):
        for t in range(3):
            cost[r, t] = e[r] if r >= t else sum(e[r:t + 1])
    return cost


def evaluate(scores: np.ndarray, thresholds: Mapping[str, float], energy: Mapping[str, float],
             labels: Sequence[str] | None = None) -> ThresholdOutcome:
    """Shares, energy and (with labels) under- and over-routing of ``thresholds`` on ``scores``."""
    large, search = float(thresholds["route.large"]), float(thresholds["route.search"])
    routed = Policy({"route.large": large, "route.search": search}).route_ranks(scores)
    n = len(routed)
    shares: dict[str, float] = {tier: float(np.mean(routed == rank)) if n else 0.0 for tier, rank in RANK.items()}
    under = over = None
    if labels is None:
        e = np.array([float(energy[tier]) for tier in TIERS])
        total = float(e[routed].sum())
    else:
        truth = _ranks(labels)
        total = float(cost_matrix(energy)[routed, truth].sum())
        needs_large = truth == 2
        under = float(np.mean(routed[needs_large] < 2)) if needs_large.any() else 0.0
        over = float(np.mean(routed > truth)) if n else 0.0
    return ThresholdOutcome({"route.large": large, "route.search": search}, n, shares, total / n if n else 0.0,
                            under, over)


def cut_points(values: np.ndarray) -> list[tuple[float, int]]:
    """(threshold, how many values are >= it) for every distinct cut of ``values``, fewest included first.

    A cut that would need a threshold above 1 (the top value is 1.0) is left out.
    """
    if len(values) == 0:
        return [(0.5, 0)]
    unique, sizes = np.unique(values, return_counts=True)
    unique, counts = unique[::-1], np.cumsum(sizes[::-1])  # descending values; how many are >= each
    cuts: list[tuple[float, int]] = []
    if unique[0] < 1.0:
        cuts.append((_between(float(unique[0]), 1.0), 0))
    for j in range(1, len(unique)):
        cuts.append((_between(float(unique[j]), float(unique[j - 1])), int(counts[j - 1])))
    cuts.append((0.0 if unique[-1] <= 0 else _between(0.0, float(unique[-1])), int(counts[-1])))
    return cuts


def _between(low: float, high: float) -> float:
    """The midpoint of (low, high], rounded to 6 decimals when that stays inside the interval."""
    mid = (low + high) / 2
    rounded = round(mid, 6)
    return rounded if low < rounded <= high else mid


def optimise_labelled(scores: np.ndarray, labels: Sequence[str], energy: Mapping[str, float],
                      max_under_routing: float) -> ThresholdOutcome:
    """The thresholds with the least expected energy whose under-routing stays within ``max_under_routing``."""
    if len(scores) == 0:
        raise ValueError("no labelled requests to calibrate on")
    truth = _ranks(labels)
    cost = cost_matrix(energy)
    per_tier = cost[:, truth]  # per_tier[r, i]: cost of request i if routed to r
    needs_large = truth == 2
    n_large = int(needs_large.sum())
    order = np.argsort(-scores[:, 0], kind="stable")  # a prefix of this order is "search score >= cut"
    search_cuts = cut_points(scores[:, 0])  # highest threshold first, so argmin prefers it on ties
    search_at = np.array([cut for cut, _k in search_cuts])
    included = np.array([k for _cut, k in search_cuts])
    best: tuple[float, float, float] | None = None  # (energy, route.large, route.search)
    for large_t, _count in sorted(cut_points(scores[:, 2]), key=lambda cut: cut[0]):
        below = scores[:, 2] < large_t
        under = float((below & needs_large).sum()) / n_large if n_large else 0.0
        if under > max_under_routing + 1e-12:
            continue
        base = float(per_tier[2, ~below].sum() + per_tier[1, below].sum())
        delta = np.where(below, per_tier[0] - per_tier[1], 0.0)[order]
        totals = base + np.concatenate([[0.0], np.cumsum(delta)])[included]
        pick = int(np.argmin(totals))
        total = float(totals[pick])
        if best is None or total < best[0] - 1e-12 * max(1.0, abs(best[0])):
            best = (total, large_t, float(search_at[pick]))
    assert best is not None  # route.large below every score sends all to large: always feasible
    return evaluate(scores, {"route.large": best[1], "route.search": best[2]}, energy, labels)


def threshold_for_share(large_scores: np.ndarray, target: float) -> tuple[float, float]:
    """The route.large whose large-tier share on ``large_scores`` is closest to ``target`` (ties: larger share)."""
    if len(large_scores) == 0:
        raise ValueError("no scored requests to calibrate on")
    n = len(large_scores)
    best = min(cut_points(large_scores), key=lambda cut: (abs(cut[1] / n - target), -cut[1]))
    return best[0], best[1] / n


def _ranks(labels: Sequence[str]) -> np.ndarray:
    unknown = sorted({label for label in labels if label not in RANK})
    if unknown:
        raise ValueError(f"unknown tier labels {unknown}; valid: {list(TIERS)}")
    return np.array([TIERS.index(label) for label in labels], dtype=int)  # TIERS.index is RANK, for any str
