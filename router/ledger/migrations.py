"""Named, append-only schema migrations for the ledger (and later the thresholds and audit tables).

Each migration is a function appended to ``MIGRATIONS`` under a name that never changes; applied names
are kept in the ``frugal_migrations`` table, so a database is brought up to date by running the
missing ones in order. Never edit or reorder a migration that has shipped: append a new one (issue 7
adds its tables by appending here). Migrations build their own ``Table`` objects rather than reuse
``router.ledger.schema``, so that later schema changes cannot alter what an old migration did.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
    text,
)
from sqlalchemy.engine import Connection

from router.ledger.row import unreturned_energy

log = logging.getLogger(__name__)

MIGRATIONS_TABLE = "frugal_migrations"
_PG_LOCK_KEY = 0x46525547  # "FRUG": serialises migrations of replicas starting together

Migration = tuple[str, Callable[[Connection], None]]

#: The energy columns as 0001 and 0002 created them, frozen: ``router.ledger.row.ENERGY_COLUMNS`` equals
#: this today, and a column added there needs a new migration that adds it (never an edit of this tuple).
_V1_ENERGY_COLUMNS = (
    "energy_wh", "energy_wh_min", "energy_wh_max", "co2e_g", "co2e_g_min", "co2e_g_max", "cost_usd",
    "cf_energy_wh", "cf_energy_wh_min", "cf_energy_wh_max", "cf_co2e_g", "cf_co2e_g_min", "cf_co2e_g_max", "cf_cost_usd",
)


def _m0001_requests(conn: Connection) -> None:
    """One row per request: routing, tokens, latency, energy, CO2e, cost and the counterfactual."""
    meta = MetaData()
    table = Table(
        "requests",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("request_id", String(64), nullable=False),
        Column("created_at", DateTime(timezone=False), nullable=False),
        Column("day", String(10), nullable=False),
        Column("client_key_id", String(128)),
        Column("requested_model", String(200), nullable=False),
        Column("route", String(16)),
        Column("forced", Boolean, nullable=False),
        Column("status", Integer, nullable=False),
        Column("error_code", String(64)),
        Column("escalations", Integer, nullable=False),
        Column("attempts", Text, nullable=False),
        Column("score_search", Float),
        Column("score_small", Float),
        Column("score_large", Float),
        Column("decision_ms", Float, nullable=False),
        Column("latency_ms", Float, nullable=False),
        Column("prompt_tokens", Integer, nullable=False),
        Column("completion_tokens", Integer, nullable=False),
        *(Column(name, Float, nullable=False) for name in _V1_ENERGY_COLUMNS),
        Column("flags", Text, nullable=False),
        Column("prompt_text", Text),
        Column("answer_text", Text),
        Index("ix_requests_created_at", "created_at"),
        Index("ix_requests_request_id", "request_id"),
    )
    table.create(conn)


_M0002_FLAGS = ("long_prompt", "unknown_model", "unknown_price")


def _m0002_hourly_rollup(conn: Connection) -> None:
    """Per UTC hour and route sums for fast reports, back-filled from existing requests."""
    meta = MetaData()
    Table(
        "request_rollup",
        meta,
        Column("hour", String(13), primary_key=True),
        Column("route", String(16), primary_key=True),
        Column("day", String(10), nullable=False),
        *(Column(name, Integer, nullable=False) for name in ("requests", "succeeded", "escalations", "escalated")),
        *(Column(f"flag_{name}", Integer, nullable=False) for name in _M0002_FLAGS),
        *(Column(name, Float, nullable=False) for name in _V1_ENERGY_COLUMNS),
    ).create(conn)
    backfill_rollup(conn)


def backfill_rollup(conn: Connection) -> None:
    """Fill ``request_rollup`` (as created by 0002) from ``requests``; used by 0002 and ``Ledger.rebuild_rollup``."""
    hour = (
        "to_char(created_at, 'YYYY-MM-DD\"T\"HH24')" if conn.dialect.name == "postgresql"
        else "strftime('%Y-%m-%dT%H', created_at)"
    )
    flags = [f"flag_{f}" for f in _M0002_FLAGS]
    columns = ["hour", "route", "day", "requests", "succeeded", "escalations", "escalated", *flags, *_V1_ENERGY_COLUMNS]
    selects = [
        hour, "COALESCE(route, 'none')", "MIN(day)", "COUNT(*)", "SUM(CASE WHEN status < 400 THEN 1 ELSE 0 END)",
        "SUM(escalations)", "SUM(CASE WHEN escalations > 0 THEN 1 ELSE 0 END)",
        *(f"SUM(CASE WHEN flags LIKE '%\"{f}\"%' THEN 1 ELSE 0 END)" for f in _M0002_FLAGS),
        *(f"SUM({name})" for name in _V1_ENERGY_COLUMNS),
    ]
    conn.execute(text(
        f"INSERT INTO request_rollup ({', '.join(columns)}) SELECT {', '.join(selects)} FROM requests "
        f"GROUP BY {hour}, COALESCE(route, 'none')"
    ))


def _m0003_thresholds(conn: Connection) -> None:
    """Live thresholds shared by workers and replicas: a version counter, current values, the audit trail."""
    meta = MetaData()
    state = Table(
        "threshold_state",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("version", Integer, nullable=False),
    )
    Table(
        "threshold_values",
        meta,
        Column("name", String(100), primary_key=True),
        Column("value", Float, nullable=False),
        Column("version", Integer, nullable=False),
        Column("updated_at", DateTime(timezone=False), nullable=False),
    )
    Table(
        "threshold_audit",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("version", Integer, nullable=False),
        Column("changed_at", DateTime(timezone=False), nullable=False),
        Column("actor", String(200), nullable=False),
        Column("reason", Text, nullable=False),
        Column("name", String(100), nullable=False),
        Column("old_value", Float),
        Column("new_value", Float, nullable=False),
        Index("ix_threshold_audit_version", "version"),
    )
    meta.create_all(conn)
    conn.execute(state.insert().values(id=1, version=0))


def _m0004_client_index(conn: Connection) -> None:
    """An index for per-client reports: one client's requests in a period without scanning everyone's."""
    meta = MetaData()
    table = Table("requests", meta, Column("client_key_id", String(128)),
                  Column("created_at", DateTime(timezone=False)))
    Index("ix_requests_client_created", table.c.client_key_id, table.c.created_at).create(conn)


_M0005_DEGRADED_SUMS = tuple(f"degraded_{name}" for name in _V1_ENERGY_COLUMNS)


def backfill_net_sums(conn: Connection) -> None:
    """Set the rollup's ``degraded`` count, ``degraded_*`` sums and ``escalation_energy_wh`` from ``requests``.

    Used by 0005 and ``Ledger.rebuild_rollup``. One scan of ``requests`` groups the rows that matter by hour
    and route; each group then updates its rollup row by primary key (a correlated subquery per rollup row
    would scan ``requests`` once per hour).
    """
    hour = (
        "to_char(created_at, 'YYYY-MM-DD\"T\"HH24')" if conn.dialect.name == "postgresql"
        else "strftime('%Y-%m-%dT%H', created_at)"
    )
    degraded = "flags LIKE '%\"degraded:%'"
    sums = ", ".join(f"SUM(CASE WHEN {degraded} THEN {name} ELSE 0 END) AS {name}" for name in _V1_ENERGY_COLUMNS)
    groups = conn.execute(text(
        f"SELECT {hour} AS hour, COALESCE(route, 'none') AS route, SUM(CASE WHEN {degraded} THEN 1 ELSE 0 END) AS n, "
        f"{sums}, SUM(escalation_energy_wh) AS wh FROM requests WHERE {degraded} OR escalation_energy_wh > 0 "
        f"GROUP BY {hour}, COALESCE(route, 'none')"
    )).all()
    zero = ", ".join(f"{name} = 0" for name in _M0005_DEGRADED_SUMS)
    conn.execute(text(f"UPDATE request_rollup SET degraded = 0, escalation_energy_wh = 0, {zero}"))
    if groups:
        assign = ", ".join(f"degraded_{name} = :{name}" for name in _V1_ENERGY_COLUMNS)
        conn.execute(text(f"UPDATE request_rollup SET degraded = :n, escalation_energy_wh = :wh, {assign} "
                          "WHERE hour = :hour AND route = :route"), [dict(g._mapping) for g in groups])


def _add_column(conn: Connection, table: str, definition: str) -> None:
    """``ALTER TABLE … ADD COLUMN`` unless the column exists (a table re-created by an earlier migration's replay)."""
    from sqlalchemy import inspect

    if definition.split()[0] not in {column["name"] for column in inspect(conn).get_columns(table)}:
        conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {definition}"))


def _m0005_rollup_degraded(conn: Connection) -> None:
    """Degraded answers and unreturned work, per request and per hour and route: the report states net savings."""
    _add_column(conn, "requests", "escalation_energy_wh FLOAT NOT NULL DEFAULT 0")
    rows = conn.execute(text(
        "SELECT id, route, attempts FROM requests WHERE escalations > 0 OR status >= 400")).all()
    updates = [{"id": r.id, "wh": unreturned_energy(r.route, json.loads(r.attempts))} for r in rows]
    if updates:
        conn.execute(text("UPDATE requests SET escalation_energy_wh = :wh WHERE id = :id"), updates)
    _add_column(conn, "request_rollup", "degraded INTEGER NOT NULL DEFAULT 0")
    for name in (*_M0005_DEGRADED_SUMS, "escalation_energy_wh"):
        _add_column(conn, "request_rollup", f"{name} FLOAT NOT NULL DEFAULT 0")
    backfill_net_sums(conn)


def _m0006_work_columns(conn: Connection) -> None:
    """Per request: the tier tried first (what-if replay) and the CPU-time energy of local work (a cross-check)."""
    _add_column(conn, "requests", "first_tier VARCHAR(16)")
    _add_column(conn, "requests", "cpu_energy_wh FLOAT")
    rows = conn.execute(text("SELECT id, attempts FROM requests WHERE first_tier IS NULL")).all()
    updates = []
    for r in rows:
        attempts = json.loads(r.attempts)
        if attempts and isinstance(attempts[0], dict) and attempts[0].get("tier"):
            updates.append({"id": r.id, "tier": str(attempts[0]["tier"])[:16]})
    if updates:
        conn.execute(text("UPDATE requests SET first_tier = :tier WHERE id = :id"), updates)
    # cpu_energy_wh stays NULL on older rows: their energy_wh was itself the CPU-time estimate.


MIGRATIONS: list[Migration] = [
    ("0001_requests", _m0001_requests),
    ("0002_hourly_rollup", _m0002_hourly_rollup),
    ("0003_thresholds", _m0003_thresholds),
    ("0004_client_index", _m0004_client_index),
    ("0005_rollup_degraded", _m0005_rollup_degraded),
    ("0006_work_columns", _m0006_work_columns),
]


def _migrations_table(meta: MetaData) -> Table:
    return Table(
        MIGRATIONS_TABLE,
        meta,
        Column("name", String(200), primary_key=True),
        Column("applied_at", DateTime(timezone=False), nullable=False),
    )


def migrate(engine: Engine, migrations: list[Migration] | None = None) -> list[str]:
    """Apply the missing migrations in order, each in its own transaction; return the names applied."""
    todo = MIGRATIONS if migrations is None else migrations
    names = [name for name, _ in todo]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate migration names in {names}")
    applied_now: list[str] = []
    meta = MetaData()
    book = _migrations_table(meta)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        meta.create_all(conn, checkfirst=True)
    for name, apply in todo:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
            done = conn.execute(select(book.c.name).where(book.c.name == name)).first()
            if done is not None:
                continue
            log.info("applying ledger migration %s", name)
            apply(conn)
            conn.execute(book.insert().values(name=name, applied_at=datetime.now(UTC).replace(tzinfo=None)))
            applied_now.append(name)
    return applied_now


def applied(engine: Engine) -> list[str]:
    """Names of the migrations recorded as applied, oldest first."""
    meta = MetaData()
    book = _migrations_table(meta)
    with engine.connect() as conn:
        return [row.name for row in conn.execute(select(book.c.name).order_by(book.c.applied_at, book.c.name))]
