"""The routing policy: named thresholds, validation, and decisions at the boundaries."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import pytest

from router.core.errors import UnprocessableError
from router.core.policy import POLICY_THRESHOLDS, Policy
from router.core.tiers import RANK, TIERS


@dataclass
class Scores:
    scores: dict[str, float]


def test_threshold_specs_are_named_and_bounded() -> None:
    assert {"route.large", "route.search"} <= set(POLICY_THRESHOLDS)
    for name, spec in POLICY_THRESHOLDS.items():
        assert spec.name == name and spec.min <= spec.default <= spec.max and spec.description


def test_large_wins_at_its_threshold_even_when_not_the_top_score() -> None:
    policy = Policy({"route.large": 0.2, "route.search": 0.5})
    decision = policy.decide(Scores({"search": 0.7, "small": 0.1, "large": 0.2}))
    assert decision.tier == "large" and "route.large" in decision.reason
    assert policy.decide(Scores({"search": 0.7, "small": 0.11, "large": 0.19})).tier == "search"


def test_search_needs_its_threshold_else_small() -> None:
    policy = Policy({"route.large": 0.3, "route.search": 0.6})
    assert policy.decide(Scores({"search": 0.6, "small": 0.3, "large": 0.1})).tier == "search"
    decision = policy.decide(Scores({"search": 0.59, "small": 0.31, "large": 0.1}))
    assert decision.tier == "small" and "route.search" in decision.reason


def test_bad_thresholds_are_rejected_with_the_valid_names() -> None:
    with pytest.raises(UnprocessableError, match="route.large"):
        Policy({"route.medium": 0.3})
    with pytest.raises(UnprocessableError, match="outside"):
        Policy({"route.large": 1.5})
    with pytest.raises(UnprocessableError, match="number"):
        Policy({"route.search": "high"})  # type: ignore[dict-item]
    with pytest.raises(UnprocessableError, match="expected"):
        Policy().decide(Scores({"search": 1.0}))


def test_defaults_apply_when_not_given() -> None:
    policy = Policy({"route.search": 0.9})
    assert policy.thresholds["route.large"] == POLICY_THRESHOLDS["route.large"].default
    assert policy.thresholds["route.search"] == 0.9


def test_policy_declares_the_shared_threshold_specs() -> None:
    from router.core.policy import ThresholdSpec, all_specs

    assert all(isinstance(spec, ThresholdSpec) for spec in POLICY_THRESHOLDS.values())
    declared = {spec.name: spec for spec in all_specs()}
    for name, spec in POLICY_THRESHOLDS.items():
        assert declared[name] is spec  # one declaration, no conversion


@pytest.mark.parametrize("seed", range(5))
def test_route_ranks_agrees_with_decide_row_by_row_including_ties(seed: int) -> None:
    rng = random.Random(seed)
    grid = [k / 20 for k in range(21)]  # scores and thresholds on one grid, so many scores equal a threshold
    rows = [{tier: rng.choice(grid) for tier in TIERS} for _ in range(500)]
    scores = np.array([[row[tier] for tier in TIERS] for row in rows])
    pairs = [(rng.choice(grid), rng.choice(grid)) for _ in range(20)] + [(0.0, 0.0), (1.0, 1.0), (0.0, 1.0), (1.0, 0.0)]
    ties = 0
    for large, search in pairs:
        policy = Policy({"route.large": large, "route.search": search})
        expected = [RANK[policy.decide(Scores(row)).tier] for row in rows]
        assert policy.route_ranks(scores).tolist() == expected, (large, search)
        ties += sum(row["large"] == large or row["search"] == search for row in rows)
    assert ties > 0  # the thresholds' boundaries were exercised


def test_route_ranks_of_no_rows_is_empty() -> None:
    assert Policy().route_ranks(np.empty((0, len(TIERS)))).tolist() == []
