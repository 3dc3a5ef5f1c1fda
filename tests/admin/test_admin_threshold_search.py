"""The pure threshold optimisation on fixtures whose optimum is worked out by hand (see the comments)."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from router.admin.threshold_search import (
    cost_matrix,
    cut_points,
    evaluate,
    optimise_labelled,
    scores_array,
    threshold_for_share,
)

# Energy per request: search 0, small 1, large 10 (round numbers keep the sums checkable by hand).
E = {"search": 0.0, "small": 1.0, "large": 10.0}

# (search, small, large) scores and labels. Sorted by P(large): c .8, e .5, f .45, d .4, b .1, a .05.
FIXTURE = {
    "a": ((0.90, 0.05, 0.05), "search"),
    "b": ((0.10, 0.80, 0.10), "small"),
    "c": ((0.05, 0.15, 0.80), "large"),
    "d": ((0.05, 0.55, 0.40), "large"),
    "e": ((0.05, 0.45, 0.50), "small"),
    "f": ((0.05, 0.50, 0.45), "small"),
}
SCORES = np.array([s for s, _ in FIXTURE.values()])
LABELS = [label for _, label in FIXTURE.values()]


def test_cost_matrix_charges_the_escalation_chain_for_under_routing() -> None:
    cost = cost_matrix({"search": 1.0, "small": 2.0, "large": 4.0})
    # rows: routed to search/small/large; columns: labelled search/small/large
    assert cost.tolist() == [[1.0, 3.0, 7.0], [2.0, 2.0, 6.0], [4.0, 4.0, 4.0]]


def test_cut_points_are_midpoints_between_neighbouring_scores() -> None:
    assert cut_points(np.array([0.1, 0.3, 0.3, 0.6])) == [(0.8, 0), (0.45, 1), (0.2, 3), (0.05, 4)]
    assert cut_points(np.array([1.0, 0.0])) == [(0.5, 1), (0.0, 2)]  # nothing can sit above a score of 1.0


def test_without_under_routing_every_large_request_goes_large() -> None:
    # d (large, P=.4) must go large, which drags e (.5) and f (.45) along: route.large in (.1, .4] -> .25.
    # Left: a -> search (0), b -> small (1; b on search would cost 0 + 1, a tie, and ties keep search narrow).
    # Energy: c, d, e, f at 10 + a 0 + b 1 = 41 over 6 requests.
    best = optimise_labelled(SCORES, LABELS, E, max_under_routing=0.0)
    assert best.thresholds == {"route.large": 0.25, "route.search": 0.5}
    assert best.energy_wh_per_request == pytest.approx(41 / 6)
    assert best.under_routing == 0.0
    assert best.over_routing == pytest.approx(2 / 6)  # e and f (small) on the large tier
    assert best.shares == pytest.approx({"search": 1 / 6, "small": 1 / 6, "large": 4 / 6})


def test_an_under_routing_allowance_trades_one_large_request_for_two_small_ones() -> None:
    # route.large in (.5, .8] -> .65: only c goes large; d escalates small -> large (1 + 10), e and f cost 1 each.
    # Energy: c 10 + d 11 + e 1 + f 1 + a 0 + b 1 = 24 over 6 = 4.0; under-routing 1 of 2 large requests.
    best = optimise_labelled(SCORES, LABELS, E, max_under_routing=0.5)
    assert best.thresholds == {"route.large": 0.65, "route.search": 0.5}
    assert best.energy_wh_per_request == pytest.approx(4.0)
    assert best.under_routing == 0.5
    assert best.over_routing == 0.0
    # Just below the allowance the first answer comes back.
    assert optimise_labelled(SCORES, LABELS, E, max_under_routing=0.49).thresholds["route.large"] == 0.25


def test_a_cheap_search_tier_takes_only_the_search_request_and_its_saving_is_counted() -> None:
    # With search free and the small tier costly, a wrong search attempt still costs search + small, so only the
    # search-labelled request (a, P(search) .9) belongs on search: route.search between .9 and .1 -> .5.
    energy = {"search": 0.5, "small": 1.0, "large": 10.0}
    best = optimise_labelled(SCORES, LABELS, energy, max_under_routing=0.0)
    assert best.thresholds["route.search"] == 0.5
    # a costs 0.5 instead of 1: (4 * 10 + 0.5 + 1) / 6
    assert best.energy_wh_per_request == pytest.approx(41.5 / 6)


def test_evaluate_reports_shares_energy_and_routing_errors_for_given_thresholds() -> None:
    outcome = evaluate(SCORES, {"route.large": 0.6, "route.search": 0.95}, E, LABELS)
    # c large; nothing reaches search (.9 < .95); a, b, d, e, f small. d under-routed: 1 + 10.
    assert outcome.shares == pytest.approx({"search": 0.0, "small": 5 / 6, "large": 1 / 6})
    assert outcome.energy_wh_per_request == pytest.approx((10 + 1 + 1 + 11 + 1 + 1) / 6)
    assert outcome.under_routing == 0.5
    assert outcome.over_routing == pytest.approx(1 / 6)  # a (search) on the small tier
    unlabelled = evaluate(SCORES, {"route.large": 0.6, "route.search": 0.95}, E)
    assert unlabelled.under_routing is None and unlabelled.energy_wh_per_request == pytest.approx(15 / 6)


@pytest.mark.parametrize(("target", "threshold", "share"), [
    (0.4, 0.6, 0.4),   # top two of five: between .7 and .5
    (0.5, 0.4, 0.6),   # .4 and .6 are equally close: the larger share (safer) wins
    (0.0, 0.95, 0.0),  # above every score
    (1.0, 0.05, 1.0),  # below every score
    (0.21, 0.8, 0.2),
])
def test_threshold_for_share_hits_the_closest_reachable_share(target: float, threshold: float, share: float) -> None:
    large = np.array([0.9, 0.7, 0.5, 0.3, 0.1])
    assert threshold_for_share(large, target) == (pytest.approx(threshold), pytest.approx(share))


def test_scores_array_routes_as_the_policy_decides() -> None:
    from router.core.policy import Policy

    rng = random.Random(3)
    rows = [dict(zip(("search", "small", "large"), _simplex(rng), strict=True)) for _ in range(300)]
    scores = scores_array(rows)
    for large_t, search_t in [(0.2, 0.5), (0.05, 0.9), (0.7, 0.1), (rows[0]["large"], rows[1]["search"])]:
        policy = Policy({"route.large": large_t, "route.search": search_t})
        expected = [("search", "small", "large").index(policy.decide(_Scored(r)).tier) for r in rows]
        assert policy.route_ranks(scores).tolist() == expected


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_optimum_matches_brute_force_over_every_cut_pair(seed: int) -> None:
    rng = random.Random(seed)
    scores = np.array([_simplex(rng) for _ in range(40)]).round(2)  # rounding makes ties
    labels = [rng.choice(["search", "small", "large"]) for _ in range(40)]
    energy = {"search": 0.001, "small": 0.3, "large": 2.0}
    best = optimise_labelled(scores, labels, energy, max_under_routing=0.1)
    feasible = []
    for (large_t, _), (search_t, _) in itertools.product(cut_points(scores[:, 2]), cut_points(scores[:, 0])):
        outcome = evaluate(scores, {"route.large": large_t, "route.search": search_t}, energy, labels)
        if outcome.under_routing is not None and outcome.under_routing <= 0.1:
            feasible.append(outcome.energy_wh_per_request)
    assert best.under_routing is not None and best.under_routing <= 0.1
    assert best.energy_wh_per_request == pytest.approx(min(feasible), rel=1e-12)


def test_empty_or_mislabelled_input_is_refused() -> None:
    with pytest.raises(ValueError, match="no labelled"):
        optimise_labelled(np.zeros((0, 3)), [], E, 0.02)
    with pytest.raises(ValueError, match="valid"):
        optimise_labelled(SCORES[:1], ["huge"], E, 0.02)
    with pytest.raises(ValueError, match="no scored"):
        threshold_for_share(np.array([]), 0.2)


class _Scored:
    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores


def _simplex(rng: random.Random) -> tuple[float, float, float]:
    a, b = sorted((rng.random(), rng.random()))
    return a, b - a, 1 - b
