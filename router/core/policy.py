"""The routing policy and every tunable threshold: turn tier probabilities into a decision.

Sending a request that needs the large tier to a cheaper one costs trust; the reverse costs some
energy. So the large tier wins as soon as its probability reaches ``route.large`` (set low), the
search tier is tried only when its probability is clearly high (``route.search``), and everything
else goes to the small tier. Defaults come from the measurements in docs/CLASSIFIER.md.

This is the one implementation of the rule: serving (``router.dispatcher``), evaluation and training
(``classifiers``) and threshold calibration (``router.admin.threshold_search``, through ``route_ranks``)
all call it. Every threshold an admin may tune is declared here once with its range, so validation, the
admin API, the CLI and the docs list the same names; ``router.thresholds`` keeps the live values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from router.core.errors import UnprocessableError
from router.core.tiers import RANK, TIERS, Tier

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class ThresholdSpec:
    """One tunable threshold: its name, default, valid range and meaning."""

    name: str
    default: float
    min: float
    max: float
    description: str

    def to_dict(self) -> dict[str, object]:
        """The spec as JSON."""
        return {"name": self.name, "default": self.default, "min": self.min, "max": self.max,
                "description": self.description}


#: Every threshold the policy reads, by name.
POLICY_THRESHOLDS: dict[str, ThresholdSpec] = {
    spec.name: spec
    for spec in (
        ThresholdSpec(
            "route.large", 0.15, 0.0, 1.0,
            "P(large) at or above which a request goes to the large tier (low: under-routing is worse "
            "than over-routing)",
        ),
        ThresholdSpec(
            "route.search", 0.5, 0.0, 1.0,
            "P(search) at or above which a request not sent to the large tier tries the search tier "
            "first; below it, the small tier",
        ),
    )
}

#: The tier gates' thresholds: below its ``min_confidence`` a tier's answer escalates.
GATE_THRESHOLDS: tuple[ThresholdSpec, ...] = (
    ThresholdSpec(
        "search.min_confidence", 0.72, 0.0, 1.0,
        "search answers with a retrieval confidence below this escalate to the next tier",
    ),
    ThresholdSpec(
        "small.min_confidence", 0.5, 0.0, 1.0,
        "small-model answers with a self-check confidence below this escalate to the large tier",
    ),
)


def all_specs() -> tuple[ThresholdSpec, ...]:
    """Every threshold: the routing policy's and the tier gates'."""
    return tuple(POLICY_THRESHOLDS.values()) + GATE_THRESHOLDS


def validate_thresholds(changes: Mapping[str, object], specs: Mapping[str, ThresholdSpec]) -> dict[str, float]:
    """Check names and ranges of ``changes``; raise a 422 that lists every problem and the valid names and ranges."""
    problems: list[str] = []
    clean: dict[str, float] = {}
    for name, raw in changes.items():
        spec = specs.get(name)
        if spec is None:
            problems.append(f"unknown threshold {name!r}")
            continue
        try:
            if isinstance(raw, bool):
                raise TypeError
            value = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            problems.append(f"{name} must be a number, got {raw!r}")
            continue
        if math.isnan(value) or not (spec.min <= value <= spec.max):
            problems.append(f"{name}={value} is outside [{spec.min}, {spec.max}]")
            continue
        clean[name] = value
    if problems:
        valid = ", ".join(f"{s.name} [{s.min}, {s.max}]" for s in specs.values())
        raise UnprocessableError(f"{'; '.join(problems)}. Valid thresholds: {valid}", param="thresholds")
    return clean


def policy_values(values: Mapping[str, float]) -> dict[str, float]:
    """The subset of threshold values the routing policy reads."""
    return {name: value for name, value in values.items() if name in POLICY_THRESHOLDS}


class Scored(Protocol):
    """Anything carrying tier probabilities (``classifiers.Prediction``)."""

    @property
    def scores(self) -> Mapping[str, float]: ...


@dataclass(frozen=True)
class Decision:
    """The tier a request goes to first, and why."""

    tier: Tier
    reason: str
    flag: str | None = None  # set when the objective, not the thresholds, chose the tier (``objective:energy``)


#: Flag recorded on a request the energy objective moved from the small to the large tier (what-if replays it).
OBJECTIVE_ENERGY_FLAG = "objective:energy"

#: What the policy optimises once the thresholds have picked a tier (``policy.objective``, docs/CONFIGURATION.md).
#: ``energy``: when the small tier is expected to cost more energy than the large model for this request, go to
#: the large tier. ``local-first``: stay local unless a gate finds the answer insufficient (sovereignty).
OBJECTIVES: tuple[str, ...] = ("energy", "local-first")


class Policy:
    """Decides a tier from a prediction's scores, the thresholds in force and the objective."""

    def __init__(self, thresholds: Mapping[str, float] | None = None, objective: str = "energy") -> None:
        if objective not in OBJECTIVES:
            raise UnprocessableError(f"policy.objective must be one of {list(OBJECTIVES)}, got {objective!r}")
        self.objective = objective
        self.thresholds = {name: spec.default for name, spec in POLICY_THRESHOLDS.items()}
        self.thresholds.update(validate_thresholds(thresholds or {}, POLICY_THRESHOLDS))

    def decide(self, prediction: Scored, expected_wh: Mapping[str, float] | None = None) -> Decision:
        """The first tier: by the thresholds, then by ``expected_wh`` (each available tier's expected Wh)."""
        decision = self._by_thresholds(prediction)
        if not expected_wh:
            return decision
        small, large = expected_wh.get("small"), expected_wh.get("large")
        figures = ", ".join(f"{tier} {wh:.3g}" for tier, wh in expected_wh.items())
        if decision.tier == "small" and small is not None and large is not None and small > large:
            if self.objective == "energy":
                return Decision("large", f"{decision.reason}; expected Wh: {figures}: the small tier would cost more "
                                         "than the large model, policy.objective=energy sends it to the large tier",
                                OBJECTIVE_ENERGY_FLAG)
            return Decision("small", f"{decision.reason}; expected Wh: {figures}: the small tier costs more than the "
                                     "large model, kept local by policy.objective=local-first")
        return Decision(decision.tier, f"{decision.reason}; expected Wh: {figures}")

    def _by_thresholds(self, prediction: Scored) -> Decision:
        """Large if likely enough, else search if clear, else small."""
        scores = prediction.scores
        missing = [tier for tier in TIERS if tier not in scores]
        if missing:
            raise UnprocessableError(f"prediction lacks scores for {missing}; expected {list(TIERS)}")
        large, search = self.thresholds["route.large"], self.thresholds["route.search"]
        if scores["large"] >= large:
            return Decision("large", f"P(large)={scores['large']:.3f} >= route.large={large:g}")
        if scores["search"] >= search:
            return Decision("search", f"P(search)={scores['search']:.3f} >= route.search={search:g}")
        return Decision(
            "small",
            f"P(large)={scores['large']:.3f} < route.large={large:g} and "
            f"P(search)={scores['search']:.3f} < route.search={search:g}",
        )

    def route_ranks(self, scores: np.ndarray) -> np.ndarray:
        """``decide`` for many rows at once: the tier rank (``RANK``) for each row of an (n, tiers) score array."""
        import numpy as np

        ranks = np.full(len(scores), RANK["small"], dtype=int)
        ranks[scores[:, RANK["search"]] >= self.thresholds["route.search"]] = RANK["search"]
        ranks[scores[:, RANK["large"]] >= self.thresholds["route.large"]] = RANK["large"]
        return ranks
