"""Prometheus metrics: per-instance registries and the exposition of what was observed."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from router.metrics import Metrics


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_two_instances_do_not_share_or_clash() -> None:
    first, second = Metrics(), Metrics()
    first.observe_request(route="small", status=200, escalations=1, energy_wh=0.002, avoided_wh=0.018,
                          decision_seconds=0.003)
    assert ("frugal_requests_total", (("status", "200"), ("tier", "small"))) in _samples(first)
    assert ("frugal_requests_total", (("status", "200"), ("tier", "small"))) not in _samples(second)


def test_observed_values_are_exposed() -> None:
    m = Metrics()
    m.observe_request(route="search", status=200, escalations=0, energy_wh=1e-6, avoided_wh=0.02, decision_seconds=0.002)
    m.observe_request(route="large", status=200, escalations=2, energy_wh=0.03, avoided_wh=-0.01, decision_seconds=0.004)
    m.observe_request(route=None, status=503, escalations=0, energy_wh=0.0, avoided_wh=0.0, decision_seconds=0.001)
    m.observe_backend("large", 1.5)
    m.observe_backend("search", 0.004)
    s = _samples(m)
    assert s[("frugal_requests_total", (("status", "200"), ("tier", "search")))] == 1
    assert s[("frugal_requests_total", (("status", "503"), ("tier", "none")))] == 1
    assert s[("frugal_escalations_total", (("tier", "large"),))] == 2
    assert s[("frugal_energy_wh_total", (("tier", "large"),))] == 0.03
    assert s[("frugal_avoided_energy_wh_total", (("tier", "search"),))] == 0.02
    assert ("frugal_avoided_energy_wh_total", (("tier", "large"),)) not in s  # counters never go down
    # the counterfactual counter keeps the net figure exact: 0.02 Wh counterfactual - 0.03 Wh spent
    assert s[("frugal_counterfactual_energy_wh_total", (("tier", "large"),))] == pytest.approx(0.02)
    assert s[("frugal_counterfactual_energy_wh_total", (("tier", "search"),))] == pytest.approx(0.020001)
    assert s[("frugal_routing_decision_seconds_count", ())] == 3
    assert s[("frugal_routing_decision_seconds_sum", ())] == 0.007
    assert s[("frugal_backend_seconds_count", (("tier", "large"),))] == 1
    assert s[("frugal_backend_seconds_bucket", (("le", "2.5"), ("tier", "large")))] == 1
    assert s[("frugal_backend_seconds_bucket", (("le", "1.0"), ("tier", "large")))] == 0


def test_a_degraded_answer_is_counted_as_degraded_and_avoids_nothing() -> None:
    m = Metrics()
    m.observe_request(route="small", status=200, escalations=1, energy_wh=0.002, avoided_wh=0.018,
                      decision_seconds=0.003, degraded="large-unavailable")
    s = _samples(m)
    assert s[("frugal_degraded_total", (("reason", "large-unavailable"), ("tier", "small")))] == 1
    assert ("frugal_avoided_energy_wh_total", (("tier", "small"),)) not in s
    # counterfactual minus spent is the net saving: zero for a degraded answer
    assert s[("frugal_counterfactual_energy_wh_total", (("tier", "small"),))] == pytest.approx(0.002)
