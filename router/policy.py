"""The routing policy: turn tier probabilities into a decision with named, explicit thresholds.

Sending a request that needs the large tier to a cheaper one costs trust; the reverse costs some
energy. So the large tier wins as soon as its probability reaches ``route.large`` (set low), the
search tier is tried only when its probability is clearly high (``route.search``), and everything
else goes to the small tier. Defaults come from the measurements in docs/CLASSIFIER.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from backends.base import TIERS, Tier
from router.errors import UnprocessableError
from router.thresholds import ThresholdSpec

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


class Scored(Protocol):
    """Anything carrying tier probabilities (``classifiers.Prediction``)."""

    @property
    def scores(self) -> Mapping[str, float]: ...


@dataclass(frozen=True)
class Decision:
    """The tier a request goes to first, and why."""

    tier: Tier
    reason: str


def validate_thresholds(values: Mapping[str, float]) -> dict[str, float]:
    """Check names and bounds of threshold values; raise ``UnprocessableError`` listing valid ones."""
    unknown = sorted(set(values) - set(POLICY_THRESHOLDS))
    if unknown:
        raise UnprocessableError(
            f"unknown policy thresholds {unknown}; valid: {sorted(POLICY_THRESHOLDS)}", param="thresholds"
        )
    checked: dict[str, float] = {}
    for name, value in values.items():
        spec = POLICY_THRESHOLDS[name]
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            raise UnprocessableError(f"threshold {name} must be a number, got {value!r}", param=name) from exc
        if not spec.min <= number <= spec.max:
            raise UnprocessableError(
                f"threshold {name}={number} is outside [{spec.min}, {spec.max}]", param=name
            )
        checked[name] = number
    return checked


class Policy:
    """Decides a tier from a prediction's scores and the thresholds in force."""

    def __init__(self, thresholds: Mapping[str, float] | None = None) -> None:
        self.thresholds = {name: spec.default for name, spec in POLICY_THRESHOLDS.items()}
        self.thresholds.update(validate_thresholds(thresholds or {}))

    def decide(self, prediction: Scored) -> Decision:
        """The first tier for a request: large if likely enough, else search if clear, else small."""
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
