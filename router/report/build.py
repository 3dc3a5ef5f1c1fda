"""The savings report: what Frugal spent, what all-large would have spent, and what it avoided.

Aggregation runs in SQL, in one ``GROUP BY day, route`` query, so a report over a million rows takes
about a second on SQLite; everything else is arithmetic over a few hundred groups. Energy and CO2e
are ``{"value", "min", "max"}`` sums of the per-request bounds; "avoided" is counterfactual minus
actual with the widest honest bounds (cf.min - actual.max, cf.max - actual.min).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, func, literal, select
from sqlalchemy.exc import SQLAlchemyError

from router.energy.estimate import Range
from router.errors import LedgerUnavailableError
from router.ledger.store import Ledger

TIERS = ("search", "small", "large")
UNROUTED = "none"
CHEAP_TIERS = ("search", "small")
REPORTED_FLAGS = ("long_prompt", "unknown_model", "unknown_price")
_SUMS = (
    "energy_wh", "energy_wh_min", "energy_wh_max", "co2e_g", "co2e_g_min", "co2e_g_max", "cost_usd",
    "cf_energy_wh", "cf_energy_wh_min", "cf_energy_wh_max", "cf_co2e_g", "cf_co2e_g_min", "cf_co2e_g_max", "cf_cost_usd",
)


class _Totals:
    """Sums over a set of (day, route) groups."""

    def __init__(self) -> None:
        self.requests = 0
        self.succeeded = 0
        self.escalations = 0
        self.escalated = 0
        self.sums: dict[str, float] = defaultdict(float)
        self.flags: dict[str, int] = defaultdict(int)

    def add(self, group: dict[str, Any]) -> None:
        self.requests += int(group["requests"])
        self.succeeded += int(group["succeeded"] or 0)
        self.escalations += int(group["escalations"] or 0)
        self.escalated += int(group["escalated"] or 0)
        for name in _SUMS:
            self.sums[name] += float(group[name] or 0.0)
        for flag in REPORTED_FLAGS:
            self.flags[flag] += int(group[f"flag_{flag}"] or 0)

    def range(self, prefix: str) -> Range:
        return Range(self.sums[prefix], self.sums[f"{prefix}_min"], self.sums[f"{prefix}_max"])


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _per_wh(requests: int, energy: Range) -> dict[str, float | None]:
    """Requests per Wh; the bounds swap because more energy means fewer requests per Wh."""
    return {"value": _ratio(requests, energy.value), "min": _ratio(requests, energy.max), "max": _ratio(requests, energy.min)}


def _query(ledger: Ledger, since: datetime | None, until: datetime | None) -> list[dict[str, Any]]:
    t = ledger.requests
    route = func.coalesce(t.c.route, literal(UNROUTED)).label("route")
    columns = [
        t.c.day.label("day"),
        route,
        func.count().label("requests"),
        func.sum(case((t.c.status < 400, 1), else_=0)).label("succeeded"),
        func.sum(t.c.escalations).label("escalations"),
        func.sum(case((t.c.escalations > 0, 1), else_=0)).label("escalated"),
        func.min(t.c.created_at).label("first"),
        func.max(t.c.created_at).label("last"),
        *(func.sum(t.c[name]).label(name) for name in _SUMS),
        *(func.sum(case((t.c.flags.like(f'%"{flag}"%'), 1), else_=0)).label(f"flag_{flag}") for flag in REPORTED_FLAGS),
    ]
    query = ledger.where_period(select(*columns), since, until).group_by(t.c.day, route).order_by(t.c.day)
    try:
        with ledger.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]
    except SQLAlchemyError as exc:
        raise LedgerUnavailableError(f"cannot read the ledger for the report: {exc}") from exc


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if isinstance(moment, str):  # SQLite returns min()/max() of a DATETIME as text
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _money(totals: _Totals, prefix: str) -> float:
    return totals.sums[prefix]


def build_report(
    ledger: Ledger, *, since: datetime | None = None, until: datetime | None = None, method: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The report dict of the DESIGN contract for requests with ``since <= created_at < until``."""
    groups = _query(ledger, since, until)
    total = _Totals()
    by_route: dict[str, _Totals] = defaultdict(_Totals)
    by_day: dict[str, _Totals] = defaultdict(_Totals)
    day_routes: dict[str, dict[str, int]] = defaultdict(dict)
    avoided_calls = 0
    firsts, lasts = [], []
    for group in groups:
        total.add(group)
        by_route[group["route"]].add(group)
        by_day[group["day"]].add(group)
        day_routes[group["day"]][group["route"]] = int(group["requests"])
        if group["route"] in CHEAP_TIERS:
            avoided_calls += int(group["succeeded"] or 0)
        firsts.append(_iso(group["first"]))
        lasts.append(_iso(group["last"]))

    energy, co2e = total.range("energy_wh"), total.range("co2e_g")
    cf_energy, cf_co2e = total.range("cf_energy_wh"), total.range("cf_co2e_g")
    tiers = list(TIERS) + sorted(set(by_route) - set(TIERS))
    by_tier = {
        tier: {
            "requests": by_route[tier].requests,
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
            "by_tier": {tier: day_routes[day].get(tier, 0) for tier in tiers},
            "energy_wh": d_energy.to_dict(),
            "counterfactual_energy_wh": d_cf.to_dict(),
            "avoided_energy_wh": (d_cf - d_energy).to_dict(),
            "co2e_g": d.range("co2e_g").to_dict(),
            "cost_usd": _money(d, "cost_usd"),
            "counterfactual_cost_usd": _money(d, "cf_cost_usd"),
        })
    avoided_energy = cf_energy - energy
    return {
        "period": {
            "since": _iso(since),
            "until": _iso(until),
            "first": min(firsts) if firsts else None,
            "last": max(lasts) if lasts else None,
            "days": len(by_day),
        },
        "requests": total.requests,
        "succeeded": total.succeeded,
        "failed": total.requests - total.succeeded,
        "by_tier": by_tier,
        "escalations": {
            "total": total.escalations,
            "requests": total.escalated,
            "share": _ratio(total.escalated, total.requests) or 0.0,
        },
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
            "co2e_g": (cf_co2e - co2e).to_dict(),
            "cost_usd": _money(total, "cf_cost_usd") - _money(total, "cost_usd"),
            "energy_share": _ratio(avoided_energy.value, cf_energy.value),
        },
        "requests_per_wh": _per_wh(total.requests, energy),
        "flags": dict(total.flags) if total.requests else {flag: 0 for flag in REPORTED_FLAGS},
        "daily": daily,
        "method": method or {},
    }
