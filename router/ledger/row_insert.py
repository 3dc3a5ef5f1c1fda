"""Writing ledger rows on the hot path: two statements compiled once, run on one kept DBAPI connection.

Every answered request waits for its row's commit (``router.ledger.writer``), so the commit's own Python
is on the request's critical path and, under load, holds the GIL the event loop needs. Through SQLAlchemy
Core a one-row SQLite commit cost 0.46 ms of CPU (statement cache keys, parameter construction, a pool
checkout; on PostgreSQL also a pre-ping round trip); this way it costs 0.28 ms, of which a bare sqlite3
INSERT and COMMIT with ``synchronous=FULL`` is 0.15 ms (docs/benchmarks/gateway.md). So the statements are
compiled by SQLAlchemy once, for the engine's dialect (its SQL text, parameter order and type processors),
and run with the driver's ``executemany`` on a connection the inserter keeps checked out of the pool.

A connection that turns out to be dead (the database restarted, a socket timed out) is dropped; when
SQLAlchemy's dialect says so before anything was committed, the batch is retried once on a fresh one, so
a database restart costs no spooled rows. Every other error goes to the caller as it is: the spool takes
the rows and its replay dedupes by ``request_id`` (a commit whose acknowledgement was lost is not
retried here).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine, Table, bindparam

from router.ledger.interface import DEGRADED
from router.ledger.row import ENERGY_COLUMNS
from router.ledger.schema import ROLLUP_COUNTS, ROLLUP_FLAGS, ROLLUP_SUMS, UNROUTED, hour_key


class _Statement:
    """One statement's SQL for the engine's dialect, with its parameters' order and bind processors."""

    def __init__(self, engine: Engine, statement: Any, table: Table, keys: Sequence[str]) -> None:
        dialect = engine.dialect
        compiled = statement.values({key: bindparam(key) for key in keys}).compile(dialect=dialect)
        self.sql = str(compiled)
        self.names: list[str] | None = list(compiled.positiontup or []) if compiled.positional else None
        processors: dict[str, Callable[[Any], Any]] = {}
        for key in keys:
            processor = table.c[key].type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                processors[key] = processor
        self.processors = processors

    def parameters(self, values: dict[str, Any]) -> Any:
        """The driver's parameters for one row of ``values`` (a tuple or a dict, as the dialect wants)."""
        if self.processors:
            values = {**values, **{key: process(values[key]) for key, process in self.processors.items()}}
        return tuple(values[name] for name in self.names) if self.names is not None else values


def rollup_cells(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The hourly rollup's increments for ``values`` (rows as ``Ledger._values`` makes them), one per (hour, route)."""
    deltas: dict[tuple[str, str], dict[str, Any]] = {}
    for v in values:
        key = (hour_key(v["created_at"]), v["route"] or UNROUTED)
        d = deltas.get(key)
        if d is None:
            d = deltas[key] = {"hour": key[0], "route": key[1], "day": v["day"],
                               **dict.fromkeys(ROLLUP_COUNTS, 0), **dict.fromkeys(ROLLUP_SUMS, 0.0)}
        d["requests"] += 1
        d["succeeded"] += 1 if v["status"] < 400 else 0
        d["escalations"] += v["escalations"]
        d["escalated"] += 1 if v["escalations"] > 0 else 0
        degraded = f'"{DEGRADED}' in v["flags"]  # as LIKE '%"degraded:%'
        d["degraded"] += 1 if degraded else 0
        for flag in ROLLUP_FLAGS:
            d[f"flag_{flag}"] += 1 if f'"{flag}"' in v["flags"] else 0  # as LIKE '%"flag"%'
        for name in ENERGY_COLUMNS:
            d[name] += v[name]
            if degraded:
                d[f"degraded_{name}"] += v[name]
        d["escalation_energy_wh"] += v["escalation_energy_wh"]
    return list(deltas.values())


class RowInserter:
    """Inserts request rows and their rollup increments in one transaction on a kept connection (thread-safe)."""

    def __init__(self, engine: Engine, requests: Table, row_keys: Sequence[str], rollup: Table,
                 rollup_upsert: Any, cell_keys: Sequence[str]) -> None:
        self.engine = engine
        self._insert = _Statement(engine, requests.insert(), requests, row_keys)
        self._upsert = _Statement(engine, rollup_upsert, rollup, cell_keys)
        self._lock = threading.Lock()
        self._connection: Any = None
        self._committing = False  # the failure, if any, was in COMMIT: not retried

    def write(self, values: list[dict[str, Any]]) -> None:
        """Commit ``values`` and their rollup cells; raises the driver's error (the connection is then dropped)."""
        rows = [self._insert.parameters(v) for v in values]
        cells = [self._upsert.parameters(c) for c in rollup_cells(values)]
        with self._lock:
            reused = self._connection is not None
            try:
                self._transaction(rows, cells)
            except self.engine.dialect.loaded_dbapi.Error as exc:
                disconnected = self._drop(exc)
                if not (reused and disconnected) or self._committing:  # a lost COMMIT may have been applied
                    raise
                try:  # a kept connection that died idle: nothing was committed, so once more on a new one
                    self._transaction(rows, cells)
                except self.engine.dialect.loaded_dbapi.Error as again:
                    self._drop(again)
                    raise

    def close(self) -> None:
        """Give the kept connection back to the pool."""
        with self._lock:
            if self._connection is not None:
                connection, self._connection = self._connection, None
                connection.close()

    def _transaction(self, rows: list[Any], cells: list[Any]) -> None:
        self._committing = False
        if self._connection is None:
            self._connection = self.engine.raw_connection()
        connection = self._connection
        cursor = connection.cursor()
        try:
            cursor.executemany(self._insert.sql, rows)
            cursor.executemany(self._upsert.sql, cells)
        except BaseException:
            with contextlib.suppress(self.engine.dialect.loaded_dbapi.Error):  # the caller drops the connection
                connection.rollback()
            raise
        finally:
            cursor.close()
        self._committing = True
        connection.commit()

    def _drop(self, exc: Any) -> bool:
        """Forget the kept connection after ``exc``; whether the dialect calls ``exc`` a lost connection."""
        connection, self._connection = self._connection, None
        if connection is None:
            return False
        disconnected = bool(self.engine.dialect.is_disconnect(exc, connection.dbapi_connection, None))
        with contextlib.suppress(Exception):  # closing a broken connection may fail too; it is gone either way
            connection.invalidate(exc) if disconnected else connection.close()
        return disconnected
