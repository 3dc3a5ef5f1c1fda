"""The savings report: what Frugal spent, what all-large would have spent, and what it avoided.

Aggregation runs in SQL over the hourly rollup the ledger keeps with every insert (whole hours) plus
the raw rows of the partial hours at the period's edges, so a report over a million requests reads a
few thousand rollup rows; everything else is arithmetic over a few hundred (day, route) groups. A report for one
client (a named client key: a team or an app) reads that client's raw rows through their index. Energy and CO2e
are ``{"value", "min", "max"}`` sums of the per-request bounds; "avoided" is counterfactual minus
actual with the widest honest bounds (cf.min - actual.max, cf.max - actual.min).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, literal, select
from sqlalchemy.exc import SQLAlchemyError

from router.core.errors import LedgerUnavailableError
from router.core.estimate import Range
from router.ledger.schema import ROLLUP_FLAGS, ROLLUP_SUMS, UNROUTED, hour_key
from router.ledger.store import Ledger, to_utc_naive

TIERS = ("search", "small", "large")
CHEAP_TIERS = ("search", "small")
REPORTED_FLAGS = ROLLUP_FLAGS
_SUMS = ROLLUP_SUMS


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


def _raw_groups(ledger: Ledger, since: datetime | None, until: datetime | None,
                client: str | None = None) -> list[dict[str, Any]]:
    """Per (day, route) sums straight from ``requests`` (partial hours at the period's edges, or one client)."""
    t = ledger.requests
    route = func.coalesce(t.c.route, literal(UNROUTED)).label("route")
    columns = [
        t.c.day.label("day"),
        route,
        func.count().label("requests"),
        func.sum(case((t.c.status < 400, 1), else_=0)).label("succeeded"),
        func.sum(t.c.escalations).label("escalations"),
        func.sum(case((t.c.escalations > 0, 1), else_=0)).label("escalated"),
        *(func.sum(case((t.c.flags.like(f'%"{flag}"%'), 1), else_=0)).label(f"flag_{flag}") for flag in REPORTED_FLAGS),
        *(func.sum(t.c[name]).label(name) for name in _SUMS),
    ]
    query = ledger.where_period(select(*columns), since, until)
    if client is not None:
        query = query.where(t.c.client_key_id == client)
    return _fetch(ledger, query.group_by(t.c.day, route))


def _rollup_groups(ledger: Ledger, low: datetime | None, high: datetime | None) -> list[dict[str, Any]]:
    """Per (day, route) sums from the hourly rollup for whole hours ``low <= hour < high``."""
    r = ledger.rollup
    names = ("requests", "succeeded", "escalations", "escalated", *(f"flag_{f}" for f in REPORTED_FLAGS), *_SUMS)
    query = select(r.c.day, r.c.route, *(func.sum(r.c[name]).label(name) for name in names))
    if low is not None:
        query = query.where(r.c.hour >= hour_key(low))
    if high is not None:
        query = query.where(r.c.hour < hour_key(high))
    return _fetch(ledger, query.group_by(r.c.day, r.c.route))


def _fetch(ledger: Ledger, query: Any) -> list[dict[str, Any]]:
    try:
        with ledger.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]
    except SQLAlchemyError as exc:
        raise LedgerUnavailableError(f"cannot read the ledger for the report: {exc}") from exc


def _groups(ledger: Ledger, since: datetime | None, until: datetime | None) -> list[dict[str, Any]]:
    """Whole hours from the rollup, the partial hours at either edge from the raw rows."""
    low = to_utc_naive(since) if since is not None else None
    high = to_utc_naive(until) if until is not None else None
    low_hour = _ceil_hour(low) if low is not None else None
    high_hour = high.replace(minute=0, second=0, microsecond=0) if high is not None else None
    if low_hour is not None and high_hour is not None and low_hour >= high_hour:
        return _raw_groups(ledger, low, high)
    groups = _rollup_groups(ledger, low_hour, high_hour)
    if low is not None and low_hour is not None and low < low_hour:
        groups += _raw_groups(ledger, low, low_hour)
    if high is not None and high_hour is not None and high_hour < high:
        groups += _raw_groups(ledger, high_hour, high)
    return groups


def _ceil_hour(moment: datetime) -> datetime:
    floor = moment.replace(minute=0, second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(hours=1)


def _bounds(ledger: Ledger, since: datetime | None, until: datetime | None,
            client: str | None = None) -> tuple[Any, Any]:
    """First and last request time in the period (two index lookups)."""
    t = ledger.requests
    first = ledger.where_period(select(func.min(t.c.created_at)), since, until)
    last = ledger.where_period(select(func.max(t.c.created_at)), since, until)
    if client is not None:
        first, last = first.where(t.c.client_key_id == client), last.where(t.c.client_key_id == client)
    try:
        with ledger.engine.connect() as conn:
            return conn.execute(first).scalar(), conn.execute(last).scalar()
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
    ledger: Ledger, *, since: datetime | None = None, until: datetime | None = None, method: dict[str, Any] | None = None,
    client: str | None = None,
) -> dict[str, Any]:
    """The report dict of the DESIGN contract for requests with ``since <= created_at < until`` (of one client)."""
    groups = _groups(ledger, since, until) if client is None else _raw_groups(ledger, since, until, client)
    first, last = _bounds(ledger, since, until, client)
    total = _Totals()
    by_route: dict[str, _Totals] = defaultdict(_Totals)
    by_day: dict[str, _Totals] = defaultdict(_Totals)
    day_routes: dict[str, dict[str, int]] = defaultdict(dict)
    avoided_calls = 0
    for group in groups:
        total.add(group)
        by_route[group["route"]].add(group)
        by_day[group["day"]].add(group)
        day_routes[group["day"]][group["route"]] = day_routes[group["day"]].get(group["route"], 0) + int(group["requests"])
        if group["route"] in CHEAP_TIERS:
            avoided_calls += int(group["succeeded"] or 0)

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
            "first": _iso(first),
            "last": _iso(last),
            "days": len(by_day),
            "client": client,
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
