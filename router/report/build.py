"""The savings report: what Frugal spent, what all-large would have spent, and what it avoided.

The ledger does the aggregation (``LedgerStore.day_route_totals``: in SQL, over its hourly rollup plus the
raw rows of the partial hours at the period's edges, or over one client's raw rows); everything here is
arithmetic over a few hundred (day, route) groups. Energy and CO2e are ``{"value", "min", "max"}`` sums of
the per-request bounds; "avoided" is counterfactual minus actual with the widest honest bounds
(cf.min - actual.max, cf.max - actual.min).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from router.core import TIERS
from router.core.estimate import Range
from router.ledger.interface import COUNTED_FLAGS, DayRouteTotals, LedgerStore

#: Tiers whose answers avoid a large-model call: every tier but the dearest.
CHEAP_TIERS = TIERS[:-1]
REPORTED_FLAGS = COUNTED_FLAGS


class _Totals:
    """Sums over a set of (day, route) groups."""

    def __init__(self) -> None:
        self.requests = 0
        self.succeeded = 0
        self.escalations = 0
        self.escalated = 0
        self.degraded = 0
        self.sums: dict[str, float] = defaultdict(float)
        self.flags: dict[str, int] = defaultdict(int)

    def add(self, group: DayRouteTotals) -> None:
        self.requests += group.requests
        self.succeeded += group.succeeded
        self.escalations += group.escalations
        self.escalated += group.escalated
        self.degraded += group.degraded
        for name, value in group.sums.items():  # ENERGY_COLUMNS and their degraded_* parts
            self.sums[name] += value
        for flag in REPORTED_FLAGS:
            self.flags[flag] += group.flags.get(flag, 0)

    def range(self, prefix: str) -> Range:
        return Range(self.sums[prefix], self.sums[f"{prefix}_min"], self.sums[f"{prefix}_max"])

    def net_range(self, prefix: str) -> Range:
        """The sums over the requests that were not degraded (exact: a subset's sums are subtracted)."""
        whole, degraded = self.range(prefix), self.range(f"degraded_{prefix}")
        return Range(whole.value - degraded.value, whole.min - degraded.min, whole.max - degraded.max)

    def avoided(self, measure: str) -> Range:
        """All-large minus actual over the requests that were not degraded, with the widest honest bounds."""
        return self.net_range(f"cf_{measure}") - self.net_range(measure)

    def avoided_cost(self) -> float:
        return (self.sums["cf_cost_usd"] - self.sums["degraded_cf_cost_usd"]) - (
            self.sums["cost_usd"] - self.sums["degraded_cost_usd"])


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _per_wh(requests: int, energy: Range) -> dict[str, float | None]:
    """Requests per Wh; the bounds swap because more energy means fewer requests per Wh."""
    return {"value": _ratio(requests, energy.value), "min": _ratio(requests, energy.max), "max": _ratio(requests, energy.min)}


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _money(totals: _Totals, prefix: str) -> float:
    return totals.sums[prefix]


def build_report(
    ledger: LedgerStore, *, since: datetime | None = None, until: datetime | None = None, method: dict[str, Any] | None = None,
    client: str | None = None,
) -> dict[str, Any]:
    """The report dict of the DESIGN contract for requests with ``since <= created_at < until`` (of one client)."""
    groups = ledger.day_route_totals(since, until, client=client)
    first, last = ledger.first_and_last_times(since, until, client=client)
    total = _Totals()
    by_route: dict[str, _Totals] = defaultdict(_Totals)
    by_day: dict[str, _Totals] = defaultdict(_Totals)
    day_routes: dict[str, dict[str, int]] = defaultdict(dict)
    avoided_calls = 0
    for group in groups:
        total.add(group)
        by_route[group.route].add(group)
        by_day[group.day].add(group)
        day_routes[group.day][group.route] = day_routes[group.day].get(group.route, 0) + group.requests
        if group.route in CHEAP_TIERS:  # a degraded answer was needed from the large tier: not an avoided call
            avoided_calls += group.succeeded - group.degraded

    energy, co2e = total.range("energy_wh"), total.range("co2e_g")
    cf_energy, cf_co2e = total.range("cf_energy_wh"), total.range("cf_co2e_g")
    tiers = list(TIERS) + sorted(set(by_route) - set(TIERS))
    by_tier = {
        tier: {
            "requests": by_route[tier].requests,
            "degraded": by_route[tier].degraded,
            "share": _ratio(by_route[tier].requests, total.requests) or 0.0,
            "energy_wh": by_route[tier].range("energy_wh").to_dict(),
            "co2e_g": by_route[tier].range("co2e_g").to_dict(),
            "cost_usd": _money(by_route[tier], "cost_usd"),
        }
        for tier in tiers
    }
    daily = []
    for day in sorted(by_day):
        d = by_day[day]
        d_energy, d_cf = d.range("energy_wh"), d.range("cf_energy_wh")
        daily.append({
            "date": day,
            "requests": d.requests,
            "degraded": d.degraded,
            "by_tier": {tier: day_routes[day].get(tier, 0) for tier in tiers},
            "energy_wh": d_energy.to_dict(),
            "counterfactual_energy_wh": d_cf.to_dict(),
            "avoided_energy_wh": d.avoided("energy_wh").to_dict(),
            "co2e_g": d.range("co2e_g").to_dict(),
            "cost_usd": _money(d, "cost_usd"),
            "counterfactual_cost_usd": _money(d, "cf_cost_usd"),
        })
    avoided_energy = total.avoided("energy_wh")  # net: a degraded answer saved nothing, the large tier was needed
    return {
        "period": {
            "since": _iso(since),
            "until": _iso(until),
            "first": _iso(first),
            "last": _iso(last),
            "days": len(by_day),
            "client": client,
        },
        "requests": total.requests,
        "succeeded": total.succeeded,
        "failed": total.requests - total.succeeded,
        "by_tier": by_tier,
        "degraded": {
            "requests": total.degraded,
            "share": _ratio(total.degraded, total.requests) or 0.0,
            "energy_wh": total.range("degraded_energy_wh").to_dict(),
            "counterfactual_energy_wh": total.range("degraded_cf_energy_wh").to_dict(),
        },
        "escalations": {
            "total": total.escalations,
            "requests": total.escalated,
            "share": _ratio(total.escalated, total.requests) or 0.0,
        },
        "unreturned_energy_wh": total.sums["escalation_energy_wh"],
        "energy_wh": energy.to_dict(),
        "co2e_g": co2e.to_dict(),
        "cost_usd": _money(total, "cost_usd"),
        "counterfactual": {
            "energy_wh": cf_energy.to_dict(),
            "co2e_g": cf_co2e.to_dict(),
            "cost_usd": _money(total, "cf_cost_usd"),
            "requests_per_wh": _per_wh(total.requests, cf_energy),
        },
        "avoided": {
            "large_calls": avoided_calls,
            "large_calls_share": _ratio(avoided_calls, total.requests) or 0.0,
            "energy_wh": avoided_energy.to_dict(),
            "co2e_g": total.avoided("co2e_g").to_dict(),
            "cost_usd": total.avoided_cost(),
            "energy_share": _ratio(avoided_energy.value, total.net_range("cf_energy_wh").value),
            "energy_distinguishable_from_zero": avoided_energy.min > 0 or avoided_energy.max < 0,
        },
        "requests_per_wh": _per_wh(total.requests, energy),
        "flags": dict(total.flags) if total.requests else {flag: 0 for flag in REPORTED_FLAGS},
        "daily": daily,
        "method": method or {},
    }
