"""Prometheus metrics for ``GET /metrics``, on a registry owned by each app instance.

Using prometheus-client's global registry would make a second ``create_app`` in the same process
(every test) fail with duplicated time series, so ``Metrics`` carries its own ``CollectorRegistry``.
``labels()`` validates and locks on every call; a request touches up to six labelled series, so the
children are looked up once per label set and kept (``child``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

UNROUTED = "none"
LEDGER_STATES = ("ok", "spooling", "stalled", "corrupt")
DECISION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
BACKEND_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Metrics:
    """Request, escalation, energy and latency metrics of one Frugal app."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("frugal_requests", "Requests answered or failed, by final tier and HTTP status",
                                ("tier", "status"), registry=r)
        self.escalations = Counter("frugal_escalations", "Escalations to a more capable tier, by final tier",
                                   ("tier",), registry=r)
        self.energy = Counter("frugal_energy_wh", "Estimated energy spent (Wh, central value), by final tier",
                              ("tier",), registry=r)
        self.avoided = Counter("frugal_avoided_energy_wh",
                               "Estimated energy avoided versus the all-large counterfactual (Wh), by final tier",
                               ("tier",), registry=r)
        self.counterfactual = Counter(
            "frugal_counterfactual_energy_wh",
            "Estimated energy the all-large counterfactual would have used (Wh); minus frugal_energy_wh it is the "
            "net energy avoided, negative requests included", ("tier",), registry=r)
        self.degraded = Counter(
            "frugal_degraded", "Requests a cheaper tier answered because the tier they needed was unavailable "
            "(not avoided large calls), by final tier and reason", ("tier", "reason"), registry=r)
        self.decision = Histogram("frugal_routing_decision_seconds", "Time to classify and decide a route",
                                  buckets=DECISION_BUCKETS, registry=r)
        self.backend = Histogram("frugal_backend_seconds", "Time a tier's backend took to answer",
                                 ("tier",), buckets=BACKEND_BUCKETS, registry=r)
        self._children: dict[tuple[Any, ...], Any] = {}

    def child(self, metric: Any, *values: str) -> Any:
        """``metric.labels(*values)``, looked up once per label set."""
        key = (id(metric), *values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def observe_request(
        self,
        *,
        route: str | None,
        status: int,
        escalations: int,
        energy_wh: float,
        avoided_wh: float,
        decision_seconds: float,
        degraded: str | None = None,
    ) -> None:
        """Count one finished request (``route`` None if it failed before any tier answered; degraded: nothing avoided)."""
        tier = route or UNROUTED
        self.child(self.requests, tier, str(status)).inc()
        if escalations > 0:
            self.child(self.escalations, tier).inc(escalations)
        if degraded:  # the tier it needed was unavailable: a cheaper answer, not a saving
            self.child(self.degraded, tier, degraded).inc()
            avoided_wh = 0.0
        if energy_wh > 0:
            self.child(self.energy, tier).inc(energy_wh)
        if avoided_wh > 0:  # counters only go up: a costlier-than-large request counts in the two counters below
            self.child(self.avoided, tier).inc(avoided_wh)
        if energy_wh + avoided_wh > 0:
            self.child(self.counterfactual, tier).inc(energy_wh + avoided_wh)
        if decision_seconds >= 0:
            self.decision.observe(decision_seconds)

    def watch_ledger(self, state: Callable[[], dict[str, Any]]) -> None:
        """Expose the ledger's ``state()`` as gauges read at scrape time: its status (1 for the current one) and spool."""
        spooled = Gauge("frugal_ledger_spooled_rows", "Ledger rows waiting in the local spool for the database",
                        registry=self.registry)
        spooled.set_function(lambda: float(state().get("spooled_rows", 0)))
        status = Gauge("frugal_ledger_status", "1 for the ledger's current status: ok, spooling (the database is "
                       "unavailable), stalled (a commit outlived ledger.write_timeout_s) or corrupt (needs an operator)",
                       ("status",), registry=self.registry)
        for name in LEDGER_STATES:
            status.labels(status=name).set_function(_is_status(state, name))

    def observe_backend(self, tier: str, seconds: float) -> None:
        """Record one backend call's duration."""
        self.child(self.backend, tier).observe(max(0.0, seconds))

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its content type, for ``GET /metrics``."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _is_status(state: Callable[[], dict[str, Any]], name: str) -> Callable[[], float]:
    return lambda: float(state().get("status") == name)
