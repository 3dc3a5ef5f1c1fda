"""The SQL ledger (``LedgerStore``): SQLAlchemy Core over SQLite (WAL, the embedded default) or PostgreSQL.

A row the database cannot take raises ``LedgerUnavailableError`` (the service wraps the store in
``router.ledger.spool.SpooledLedger``, which keeps such rows in a local fsync'd file and replays them),
and ``record`` is one short transaction. SQLite runs in WAL mode with ``synchronous=FULL``. Times are
stored as naive UTC; a ``day`` column (UTC date) lets the report group by day in SQL the same way on
both databases. Prompt and answer text are stored only when the caller puts them in the row (the
operator's ``store_text`` switch). Aggregates live in ``router.ledger.queries`` and the persisted
thresholds in ``router.ledger.thresholds_store``; ``Ledger`` answers the interface's questions with them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, Table, create_engine, delete, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from router.core.errors import LedgerCorruptError, LedgerUnavailableError
from router.ledger import queries
from router.ledger.interface import (
    DayRouteTotals,
    HourRouteEnergy,
    ReplayCells,
    ThresholdChange,
    TierEnergy,
)
from router.ledger.migrations import backfill_net_sums, backfill_rollup, migrate
from router.ledger.queries import to_utc_naive
from router.ledger.row import RANGE_FALLBACKS, LedgerRow
from router.ledger.row_insert import RowInserter, rollup_cells
from router.ledger.schema import ROLLUP_COUNTS, ROLLUP_SUMS, LedgerTables
from router.ledger.thresholds_store import ThresholdTables

log = logging.getLogger(__name__)

_ROW_FIELDS = {f.name for f in fields(LedgerRow)}
CONNECT_TIMEOUT_S = 5  # an unreachable PostgreSQL fails fast, so the spool takes over rather than stalling
# libpq options for an open connection whose peer went silent (a partition, a dead host): TCP keepalives and
# a cap on unacknowledged writes make the socket fail in ~30 s instead of hanging. The request path never
# waits that long (``ledger.write_timeout_s`` bounds it); these bound how long the writer thread is stuck.
PG_SOCKET_OPTIONS: dict[str, Any] = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
                                     "keepalives_count": 3, "tcp_user_timeout": 30_000}
# What SQLite says of a damaged file (sqlite3.DatabaseError): no retry will help, an operator must act.
_SQLITE_CORRUPT = ("malformed", "not a database", "file is encrypted", "disk image")

__all__ = ["CONNECT_TIMEOUT_S", "Ledger", "to_utc_naive"]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # WAL + FULL: a commit survives power loss, not only kill -9
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _ledger_error(what: str, exc: Exception, database: str | None) -> LedgerUnavailableError:
    """``LedgerCorruptError`` when SQLite says its file is damaged, else ``LedgerUnavailableError``.

    ``exc`` is SQLAlchemy's error (the driver's under ``orig``) or the driver's own (``router.ledger.row_insert``).
    """
    import sqlite3

    original = getattr(exc, "orig", exc)
    if (isinstance(original, sqlite3.DatabaseError) and not isinstance(original, sqlite3.OperationalError)
            and any(marker in str(original).lower() for marker in _SQLITE_CORRUPT)):
        return LedgerCorruptError(
            f"{what}: the SQLite file {database} is damaged ({original}); move it aside and restart Frugal, "
            "spooled rows are then replayed into a new file (docs/RELIABILITY.md, 'A damaged SQLite ledger')")
    return LedgerUnavailableError(f"{what}: {exc}")


class Ledger:
    """The SQL ``LedgerStore``: append-only ``LedgerRow``s, their aggregates, and the persisted thresholds."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.metadata = MetaData()
        self.tables = LedgerTables.build(self.metadata)
        self.requests: Table = self.tables.requests
        self.rollup: Table = self.tables.rollup
        self._thresholds = ThresholdTables(engine, self.tables)
        self._rollup_upsert = self._build_rollup_upsert()
        self._inserter: RowInserter | None = None  # built on the first write (``_rows_writer``)

    @classmethod
    def open(cls, url: str) -> Ledger:
        """Connect to ``sqlite:///path`` or ``postgresql+psycopg://...``, creating and migrating the schema."""
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise LedgerUnavailableError(
                f"invalid ledger URL {url!r}: use sqlite:///path or postgresql+psycopg://user@host/db"
            ) from exc
        backend = parsed.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise LedgerUnavailableError(f"unsupported ledger database {backend!r}: use sqlite or postgresql+psycopg")
        try:
            if backend == "sqlite":
                if parsed.database and parsed.database != ":memory:":
                    Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
                engine = create_engine(parsed)
                event.listen(engine, "connect", _sqlite_pragmas)
            else:
                given = set(parsed.query)
                connect_args = {name: value for name, value in
                                {"connect_timeout": CONNECT_TIMEOUT_S, **PG_SOCKET_OPTIONS}.items() if name not in given}
                engine = create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=10,
                                       connect_args=connect_args)
            applied = migrate(engine)
        except SQLAlchemyError as exc:
            raise _ledger_error(f"cannot open the ledger at {parsed.render_as_string()}", exc, parsed.database) from exc
        if applied:
            log.info("ledger %s migrated: %s", parsed.render_as_string(), ", ".join(applied))
        return cls(engine)

    def record(self, row: LedgerRow) -> None:
        """Write one row; raise ``LedgerUnavailableError`` if the database cannot take it."""
        self._write([row], f"the ledger cannot record request {row.request_id}")

    def record_many(self, rows: list[LedgerRow]) -> None:
        """Write several rows in one transaction (a group commit, imports, benchmarks)."""
        if rows:
            self._write(rows, f"the ledger cannot record {len(rows)} rows")

    def _write(self, rows: list[LedgerRow], what: str) -> None:
        values = [self._values(row) for row in rows]
        inserter = self._rows_writer(values[0])
        try:
            inserter.write(values)
        except (SQLAlchemyError, self.engine.dialect.loaded_dbapi.Error) as exc:
            raise _ledger_error(what, exc, self.engine.url.database) from exc

    def _rows_writer(self, sample: dict[str, Any]) -> RowInserter:
        """The compiled INSERT and rollup upsert (``router.ledger.row_insert``), for rows shaped like ``sample``."""
        if self._inserter is None:
            cell = rollup_cells([sample])[0]
            self._inserter = RowInserter(self.engine, self.requests, list(sample), self.rollup, self._rollup_upsert,
                                         list(cell))
        return self._inserter

    def rows(self, since: datetime | None = None, until: datetime | None = None) -> Iterator[LedgerRow]:
        """Rows with ``since <= created_at < until``, oldest first, streamed."""
        query = select(self.requests).order_by(self.requests.c.created_at, self.requests.c.id)
        query = queries.where_period(query, self.tables, since, until)
        try:
            with self.engine.connect() as conn:
                for record in conn.execution_options(yield_per=1000).execute(query):
                    yield self._row(record._mapping)
        except SQLAlchemyError as exc:
            raise LedgerUnavailableError(f"cannot read the ledger: {exc}") from exc

    def recent(self, limit: int, *, client: str | None = None) -> list[LedgerRow]:
        """The ``limit`` most recent rows (of one client key id), newest first."""
        query = select(self.requests).order_by(self.requests.c.id.desc()).limit(max(0, int(limit)))
        if client is not None:
            query = query.where(self.requests.c.client_key_id == client)
        try:
            with self.engine.connect() as conn:
                return [self._row(record._mapping) for record in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise LedgerUnavailableError(f"cannot read the ledger: {exc}") from exc

    def recent_large_output_tokens(self, limit: int) -> list[int]:
        """Output tokens of the ``limit`` most recent answered large-tier requests, oldest first."""
        c = self.requests.c
        query = (select(c.completion_tokens).where(c.route == "large", c.status == 200, c.completion_tokens > 0)
                 .order_by(c.id.desc()).limit(max(0, int(limit))))
        try:
            with self.engine.connect() as conn:
                return [int(tokens) for (tokens,) in conn.execute(query)][::-1]
        except SQLAlchemyError as exc:
            raise LedgerUnavailableError(f"cannot read the ledger: {exc}") from exc

    def recorded_request_ids(self, request_ids: Sequence[str]) -> set[str]:
        """Those of ``request_ids`` that already have a row."""
        column = self.requests.c.request_id
        try:
            with self.engine.connect() as conn:
                return set(conn.execute(select(column).where(column.in_(list(request_ids)))).scalars())
        except SQLAlchemyError as exc:
            raise LedgerUnavailableError(f"cannot read the ledger: {exc}") from exc

    def day_route_totals(self, since: datetime | None = None, until: datetime | None = None, *,
                         client: str | None = None) -> list[DayRouteTotals]:
        """Per (UTC day, route) counts and ``ENERGY_COLUMNS`` sums of a period (of one client key id)."""
        return queries.day_route_totals(self.engine, self.tables, since, until, client)

    def first_and_last_times(self, since: datetime | None = None, until: datetime | None = None, *,
                             client: str | None = None) -> tuple[datetime | None, datetime | None]:
        """Creation times of the first and the last request of a period (of one client key id)."""
        return queries.first_and_last_times(self.engine, self.tables, since, until, client)

    def hourly_route_energy(self, since: datetime, *, client: str | None = None) -> list[HourRouteEnergy]:
        """Per (UTC hour, route) requests and energy from ``since`` on (of one client key id)."""
        return queries.hourly_route_energy(self.engine, self.tables, since, client)

    def degraded_request_count(self, since: datetime, *, client: str | None = None) -> int:
        """Requests from ``since`` on (of one client key id) with a ``degraded:…`` flag."""
        return queries.degraded_request_count(self.engine, self.tables, since, client)

    def tier_energy_means(self, since: datetime) -> dict[str, TierEnergy]:
        """Per route: successful, non-escalated requests from ``since`` on and their mean energy."""
        return queries.tier_energy_means(self.engine, self.tables, since)

    def logged_scores(self, since: datetime | None, limit: int) -> list[tuple[float, float, float]]:
        """(search, small, large) scores of the ``limit`` most recent classified, not forced, requests."""
        return queries.logged_scores(self.engine, self.tables, since, limit)

    def replay_cells(self, route_large: float, route_search: float, since: datetime | None = None,
                     until: datetime | None = None) -> ReplayCells:
        """One scan: scored, not forced, answered requests per cell, their first tier under proposed thresholds."""
        return queries.replay_cells(self.engine, self.tables, route_large, route_search, since, until)

    def threshold_version(self) -> int:
        """The persisted thresholds' version (0 before any change)."""
        return self._thresholds.version()

    def persisted_thresholds(self) -> tuple[int, dict[str, float]]:
        """The version and every persisted threshold value, read consistently."""
        return self._thresholds.load()

    def save_thresholds(self, changes: Mapping[str, float], *, actor: str, reason: str,
                        fallback: Mapping[str, float]) -> ThresholdChange:
        """Persist validated ``changes`` as one new audited version; ``fallback`` gives never-persisted old values."""
        return self._thresholds.write(changes, actor=actor, reason=reason, fallback=fallback)

    def threshold_history(self, limit: int = 100) -> list[ThresholdChange]:
        """The most recent ``limit`` threshold changes, newest first."""
        return self._thresholds.history(limit)

    def rebuild_rollup(self) -> None:
        """Recompute the hourly rollup from ``requests`` (after bulk SQL imports or deletions)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(self.rollup))
                backfill_rollup(conn)
                backfill_net_sums(conn)
        except SQLAlchemyError as exc:
            raise LedgerUnavailableError(f"cannot rebuild the ledger rollup: {exc}") from exc

    def _build_rollup_upsert(self) -> Any:
        """``INSERT ... ON CONFLICT (hour, route) DO UPDATE SET n = n + excluded.n`` (built once: it is costly)."""
        from sqlalchemy.dialects import postgresql, sqlite

        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        stmt: Any = dialect.insert(self.rollup)
        added = {name: self.rollup.c[name] + stmt.excluded[name] for name in (*ROLLUP_COUNTS, *ROLLUP_SUMS)}
        return stmt.on_conflict_do_update(index_elements=["hour", "route"], set_=added)

    def ping(self) -> bool:
        """True when the database answers."""
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
            return True
        except SQLAlchemyError:
            return False

    def close(self) -> None:
        """Release the connection pool."""
        if self._inserter is not None:
            self._inserter.close()
        self.engine.dispose()

    @staticmethod
    def _values(row: LedgerRow) -> dict[str, Any]:
        created = to_utc_naive(row.created_at)
        values: dict[str, Any] = {name: getattr(row, name) for name in _ROW_FIELDS}
        for name, fallback in RANGE_FALLBACKS.items():
            if values[name] is None:
                values[name] = values[fallback]
        values["created_at"] = created
        values["day"] = created.strftime("%Y-%m-%d")
        values["attempts"] = json.dumps(row.attempts, separators=(",", ":"), default=str)
        values["flags"] = json.dumps(list(row.flags), separators=(",", ":"))
        return values

    @staticmethod
    def _row(record: Any) -> LedgerRow:
        data = {name: record[name] for name in _ROW_FIELDS}
        data["created_at"] = record["created_at"].replace(tzinfo=UTC)
        data["attempts"] = json.loads(record["attempts"])
        data["flags"] = json.loads(record["flags"])
        return LedgerRow(**data)
