"""The ledger's aggregate reads: report totals, dashboard series, calibration figures (SQLAlchemy Core).

Totals over a period read the hourly rollup for whole hours plus the raw rows of the partial hours at
the period's edges, so a report over a million requests reads a few thousand rollup rows; totals for one
client (a named client key: a team or an app) read that client's raw rows through their index (the
rollup has no client dimension). The functions take the engine and the tables; ``Ledger`` exposes them
as the methods of ``router.ledger.interface.LedgerStore``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, case, func, literal, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.expression import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from router.core.errors import LedgerUnavailableError
from router.core.policy import OBJECTIVE_ENERGY_FLAG
from router.ledger.interface import (
    COUNTED_FLAGS,
    DEGRADED,
    REPLAY_EXCLUDED,
    REPLAY_SUMS,
    UNROUTED,
    DayRouteTotals,
    HourRouteEnergy,
    ReplayCell,
    ReplayCells,
    TierEnergy,
)
from router.ledger.row import ENERGY_COLUMNS
from router.ledger.schema import ROLLUP_SUMS, LedgerTables, hour_key

_COUNTS = ("requests", "succeeded", "escalations", "escalated", "degraded")


def to_utc_naive(moment: datetime) -> datetime:
    """A datetime as naive UTC (naive input is taken to be UTC already)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def where_period(query: Any, tables: LedgerTables, since: datetime | None, until: datetime | None) -> Any:
    """Restrict a query on ``requests`` to ``since <= created_at < until``."""
    if since is not None:
        query = query.where(tables.requests.c.created_at >= to_utc_naive(since))
    if until is not None:
        query = query.where(tables.requests.c.created_at < to_utc_naive(until))
    return query


def _fetch(engine: Engine, query: Any, what: str) -> list[Any]:
    try:
        with engine.connect() as conn:
            return list(conn.execute(query).all())
    except SQLAlchemyError as exc:
        raise LedgerUnavailableError(f"cannot read {what}: {exc}") from exc


def _totals(records: Iterable[Any]) -> list[DayRouteTotals]:
    """``DayRouteTotals`` from result rows labelled like the rollup's columns (SQL NULL sums count as 0)."""
    out = []
    for record in records:
        m: Mapping[str, Any] = record._mapping
        out.append(DayRouteTotals(
            day=m["day"], route=m["route"], **{name: int(m[name] or 0) for name in _COUNTS},
            flags={flag: int(m[f"flag_{flag}"] or 0) for flag in COUNTED_FLAGS},
            sums={name: float(m[name] or 0.0) for name in ROLLUP_SUMS}))
    return out


def raw_day_route_totals(engine: Engine, tables: LedgerTables, since: datetime | None, until: datetime | None,
                         client: str | None = None) -> list[DayRouteTotals]:
    """Per (day, route) sums straight from ``requests`` (partial hours at the period's edges, or one client)."""
    t = tables.requests
    route = func.coalesce(t.c.route, literal(UNROUTED)).label("route")
    columns = [
        t.c.day.label("day"),
        route,
        func.count().label("requests"),
        func.sum(case((t.c.status < 400, 1), else_=0)).label("succeeded"),
        func.sum(t.c.escalations).label("escalations"),
        func.sum(case((t.c.escalations > 0, 1), else_=0)).label("escalated"),
        func.sum(case((t.c.flags.like(f'%"{DEGRADED}%'), 1), else_=0)).label("degraded"),
        *(func.sum(case((t.c.flags.like(f'%"{flag}"%'), 1), else_=0)).label(f"flag_{flag}") for flag in COUNTED_FLAGS),
        *(func.sum(t.c[name]).label(name) for name in ENERGY_COLUMNS),
        *(func.sum(case((t.c.flags.like(f'%"{DEGRADED}%'), t.c[name]), else_=0.0)).label(f"degraded_{name}")
          for name in ENERGY_COLUMNS),
        func.sum(t.c.escalation_energy_wh).label("escalation_energy_wh"),
    ]
    query = where_period(select(*columns), tables, since, until)
    if client is not None:
        query = query.where(t.c.client_key_id == client)
    return _totals(_fetch(engine, query.group_by(t.c.day, route), "the ledger for the report"))


def _rollup_totals(engine: Engine, tables: LedgerTables, low: datetime | None,
                   high: datetime | None) -> list[DayRouteTotals]:
    """Per (day, route) sums from the hourly rollup for whole hours ``low <= hour < high``."""
    r = tables.rollup
    names = (*_COUNTS, *(f"flag_{f}" for f in COUNTED_FLAGS), *ROLLUP_SUMS)
    query = select(r.c.day, r.c.route, *(func.sum(r.c[name]).label(name) for name in names))
    if low is not None:
        query = query.where(r.c.hour >= hour_key(low))
    if high is not None:
        query = query.where(r.c.hour < hour_key(high))
    return _totals(_fetch(engine, query.group_by(r.c.day, r.c.route), "the ledger for the report"))


def _ceil_hour(moment: datetime) -> datetime:
    floor = moment.replace(minute=0, second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(hours=1)


def day_route_totals(engine: Engine, tables: LedgerTables, since: datetime | None, until: datetime | None,
                     client: str | None = None) -> list[DayRouteTotals]:
    """Whole hours from the rollup, the partial hours at either edge from the raw rows; one client's raw rows."""
    if client is not None:
        return raw_day_route_totals(engine, tables, since, until, client)
    low = to_utc_naive(since) if since is not None else None
    high = to_utc_naive(until) if until is not None else None
    low_hour = _ceil_hour(low) if low is not None else None
    high_hour = high.replace(minute=0, second=0, microsecond=0) if high is not None else None
    if low_hour is not None and high_hour is not None and low_hour >= high_hour:
        return raw_day_route_totals(engine, tables, low, high)
    groups = _rollup_totals(engine, tables, low_hour, high_hour)
    if low is not None and low_hour is not None and low < low_hour:
        groups += raw_day_route_totals(engine, tables, low, low_hour)
    if high is not None and high_hour is not None and high_hour < high:
        groups += raw_day_route_totals(engine, tables, high_hour, high)
    return groups


def _aware(moment: datetime | str | None) -> datetime | None:
    if moment is None:
        return None
    if isinstance(moment, str):  # SQLite returns min()/max() of a DATETIME as text
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def first_and_last_times(engine: Engine, tables: LedgerTables, since: datetime | None, until: datetime | None,
                         client: str | None = None) -> tuple[datetime | None, datetime | None]:
    """First and last request time in the period (two index lookups), aware UTC."""
    t = tables.requests
    first = where_period(select(func.min(t.c.created_at)), tables, since, until)
    last = where_period(select(func.max(t.c.created_at)), tables, since, until)
    if client is not None:
        first, last = first.where(t.c.client_key_id == client), last.where(t.c.client_key_id == client)
    try:
        with engine.connect() as conn:
            return _aware(conn.execute(first).scalar()), _aware(conn.execute(last).scalar())
    except SQLAlchemyError as exc:
        raise LedgerUnavailableError(f"cannot read the ledger for the report: {exc}") from exc


def hourly_route_energy(engine: Engine, tables: LedgerTables, since: datetime,
                        client: str | None = None) -> list[HourRouteEnergy]:
    """Per (hour, route) requests and energy from the rollup, or from one client's raw rows."""
    since = to_utc_naive(since)
    if client is None:
        r = tables.rollup
        query = (select(r.c.hour, r.c.route, func.sum(r.c.requests), func.sum(r.c.energy_wh), func.sum(r.c.cf_energy_wh))
                 .where(r.c.hour >= hour_key(since)).group_by(r.c.hour, r.c.route))
        return [HourRouteEnergy(hour, route, int(count), float(wh or 0.0), float(cf_wh or 0.0))
                for hour, route, count, wh, cf_wh in _fetch(engine, query, "the ledger for the dashboard")]
    t = tables.requests
    query = (select(t.c.created_at, t.c.route, t.c.energy_wh, t.c.cf_energy_wh)
             .where(t.c.client_key_id == client, t.c.created_at >= since))
    sums: dict[tuple[str, str], list[float]] = {}
    for at, route, wh, cf_wh in _fetch(engine, query, "the ledger for the dashboard"):
        point = sums.setdefault((hour_key(at), route or UNROUTED), [0, 0.0, 0.0])
        point[0] += 1
        point[1] += float(wh or 0.0)
        point[2] += float(cf_wh or 0.0)
    return [HourRouteEnergy(hour, route, int(n), wh, cf_wh) for (hour, route), (n, wh, cf_wh) in sums.items()]


def degraded_request_count(engine: Engine, tables: LedgerTables, since: datetime, client: str | None = None) -> int:
    """Requests since ``since`` (of one client key id) that carry a ``degraded:…`` flag."""
    t = tables.requests
    query = (select(func.count()).select_from(t)
             .where(t.c.created_at >= to_utc_naive(since), t.c.flags.like(f'%"{DEGRADED}%')))
    if client is not None:
        query = query.where(t.c.client_key_id == client)
    return int(_fetch(engine, query, "the ledger for the dashboard")[0][0])


def tier_energy_means(engine: Engine, tables: LedgerTables, since: datetime) -> dict[str, TierEnergy]:
    """Per route: successful, non-escalated requests since ``since`` and their mean energy (Wh)."""
    t = tables.requests
    query = (select(t.c.route, func.count(), func.avg(t.c.energy_wh))
             .where(and_(t.c.created_at >= to_utc_naive(since), t.c.status < 400, t.c.escalations == 0,
                         t.c.route.is_not(None)))
             .group_by(t.c.route))
    return {row[0]: TierEnergy(int(row[1]), float(row[2] or 0.0))
            for row in _fetch(engine, query, "per-tier energy from the ledger")}


def logged_scores(engine: Engine, tables: LedgerTables, since: datetime | None,
                  limit: int) -> list[tuple[float, float, float]]:
    """(search, small, large) scores of the most recent ``limit`` classified (not forced) requests."""
    t = tables.requests
    query = (select(t.c.score_search, t.c.score_small, t.c.score_large)
             .where(and_(t.c.score_large.is_not(None), t.c.score_search.is_not(None), t.c.forced.is_(False)))
             .order_by(t.c.id.desc()).limit(max(1, int(limit))))
    if since is not None:
        query = query.where(t.c.created_at >= to_utc_naive(since))
    return [(float(a), float(b), float(c)) for a, b, c in _fetch(engine, query, "logged scores from the ledger")]


def _holds_most(engine: Engine, tables: LedgerTables, since: datetime | None, until: datetime | None) -> bool:
    """Whether a bounded period holds over half the requests, by the hourly rollup (its whole hours, edges included).

    SQLite then reads the table faster front to back than through the created_at index: the index visits rows in
    time order, which is not the table's order when rows were not written in time order (bench/whatif.py's rows,
    93 % of 1M: 4.3 s through the index, 2.3 s front to back).
    """
    if since is None and until is None:
        return False
    r = tables.rollup
    inside = and_(*([r.c.hour >= hour_key(to_utc_naive(since))] if since is not None else []),
                  *([r.c.hour <= hour_key(to_utc_naive(until))] if until is not None else []))
    total, held = _fetch(engine, select(func.sum(r.c.requests), func.sum(case((inside, r.c.requests), else_=0))),
                         "the ledger to replay")[0]
    return bool(total) and 2 * int(held or 0) > int(total)


def replay_cells(engine: Engine, tables: LedgerTables, route_large: float, route_search: float,
                 since: datetime | None, until: datetime | None) -> ReplayCells:
    """One scan of ``requests``: per (kind, first tier, route, degraded, escalated, proposed first tier) counts and sums.

    The proposed first tier is ``Policy.decide``'s threshold rule in SQL, the thresholds bound as parameters; a
    request the energy objective sent from the small to the large tier (flag ``objective:energy``) goes large
    again whenever the rule picks small; a request with a floor (``floor:<tier>``: what it needs, or its
    conversation's previous answer, kept it off cheaper tiers) never goes below it.
    Excluded requests (forced, failed, unscored, no first tier) are counted in the same scan. The grouping is
    done over a subquery's plain columns: PostgreSQL would not match a GROUP BY expression whose bound
    parameters are rendered a second time. A short period goes through the created_at index; on SQLite a period
    holding most of the rows is read front to back (``_holds_most``).
    """
    t = tables.requests
    created: Any = t.c.created_at
    if engine.dialect.name == "sqlite" and _holds_most(engine, tables, since, until):
        created = UnaryExpression(created, operator=custom_op("+"), type_=created.type)  # SQLite: "+" skips the index
    scored = and_(t.c.score_large.is_not(None), t.c.score_search.is_not(None))
    kind = case((t.c.forced.is_(True), REPLAY_EXCLUDED[0]), (t.c.status >= 400, REPLAY_EXCLUDED[1]),
                (~scored, REPLAY_EXCLUDED[2]), (t.c.first_tier.is_(None), REPLAY_EXCLUDED[3]), else_="replayed")
    proposed = case((t.c.score_large >= float(route_large), "large"),
                    (t.c.flags.like('%"floor:large"%'), "large"),
                    (and_(t.c.score_search >= float(route_search), ~t.c.flags.like('%"floor:small"%')), "search"),
                    (t.c.flags.like(f'%"{OBJECTIVE_ENERGY_FLAG}"%'), "large"), else_="small")
    inner = select(
        kind.label("kind"), func.coalesce(t.c.first_tier, literal(UNROUTED)).label("first_tier"),
        func.coalesce(t.c.route, literal(UNROUTED)).label("route"),
        case((t.c.flags.like(f'%"{DEGRADED}%'), 1), else_=0).label("degraded"),
        case((t.c.escalations > 0, 1), else_=0).label("escalated"), proposed.label("proposed"),
        *(t.c[name] for name in REPLAY_SUMS))
    if since is not None:
        inner = inner.where(created >= to_utc_naive(since))
    if until is not None:
        inner = inner.where(created < to_utc_naive(until))
    keyed = inner.subquery()
    keys = (keyed.c.kind, keyed.c.first_tier, keyed.c.route, keyed.c.degraded, keyed.c.escalated, keyed.c.proposed)
    query = select(*keys, func.count(), *(func.sum(keyed.c[name]) for name in REPLAY_SUMS)).group_by(*keys)
    cells: list[ReplayCell] = []
    excluded = dict.fromkeys(REPLAY_EXCLUDED, 0)
    for kind_of, first, route, degraded, escalated, tier, count, *sums in _fetch(engine, query, "the ledger to replay"):
        if kind_of != "replayed":
            excluded[kind_of] += int(count)
            continue
        cells.append(ReplayCell(first_tier=first, route=route, degraded=bool(degraded), escalated=bool(escalated),
                                proposed=tier, requests=int(count),
                                sums={name: float(value or 0.0) for name, value in zip(REPLAY_SUMS, sums, strict=True)}))
    return ReplayCells(cells, excluded)
