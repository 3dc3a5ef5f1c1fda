"""A durable local spool in front of the ledger database, so that an answered request never loses its row.

When the database cannot take a row (PostgreSQL restarting, a network partition, a locked SQLite file),
the row is appended to ``<data_dir>/ledger-spool.jsonl`` and fsync'd before the request is answered;
a background thread replays the spool into the database once it answers again, skipping rows whose
``request_id`` is already there (a crash between the database commit and the spool's removal replays
a batch twice). While rows are pending, new rows go straight to the spool, which keeps the outage to
one failed attempt and preserves order. Only when the spool cannot be written either (disk full) is
the request refused with ``LedgerUnavailableError`` (503): never a silent loss.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from router.core.errors import LedgerUnavailableError
from router.ledger.interface import (
    DayRouteTotals,
    HourRouteEnergy,
    LedgerStore,
    ReplayCells,
    ThresholdChange,
    TierEnergy,
)
from router.ledger.row import LedgerRow

log = logging.getLogger(__name__)

SPOOL_NAME = "ledger-spool.jsonl"
REPLAYING_NAME = "ledger-spool.replaying.jsonl"
BATCH = 500
_Argument = TypeVar("_Argument")


def row_to_json(row: LedgerRow) -> str:
    """One row as a JSON line."""
    data = asdict(row)
    data["created_at"] = row.created_at.isoformat()
    return json.dumps(data, separators=(",", ":"), default=str)


def row_from_json(line: str) -> LedgerRow:
    """The row a ``row_to_json`` line holds."""
    data = json.loads(line)
    data["created_at"] = datetime.fromisoformat(data["created_at"])
    return LedgerRow(**data)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """An append-only, fsync'd JSONL file of ledger rows, rotated aside while it is replayed."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.active = self.directory / SPOOL_NAME
        self.replaying = self.directory / REPLAYING_NAME
        self._handle: Any = None

    def append(self, rows: list[LedgerRow]) -> None:
        """Write rows and fsync them before returning (the caller holds the spooled ledger's lock)."""
        if self._handle is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            created = not self.active.exists()
            self._handle = open(self.active, "a", encoding="utf-8")  # noqa: SIM115 - kept open between appends
            if created:
                _fsync_dir(self.directory)
        self._handle.write("".join(row_to_json(row) + "\n" for row in rows))
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def rotate(self) -> bool:
        """Move the active file aside for replay (unless a replay is already pending); True if there is one."""
        if self.replaying.exists():
            return True
        self._close()
        if not self.active.exists() or self.active.stat().st_size == 0:
            return False
        os.replace(self.active, self.replaying)
        _fsync_dir(self.directory)
        return True

    def pending(self) -> int:
        """Rows waiting to be replayed (both files)."""
        total = 0
        for path in (self.replaying, self.active):
            if path.exists():
                with open(path, "rb") as handle:
                    total += sum(1 for line in handle if line.strip())
        return total

    def has_rows(self) -> bool:
        """Whether either file holds anything."""
        return any(path.exists() and path.stat().st_size > 0 for path in (self.replaying, self.active))

    def read_replaying(self) -> list[LedgerRow]:
        """The rows of the file being replayed; a torn last line (power loss mid-write) is skipped."""
        rows: list[LedgerRow] = []
        with open(self.replaying, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    rows.append(row_from_json(line))
                except (ValueError, TypeError) as exc:
                    log.error("ledger spool %s line %d is unreadable and skipped: %s", self.replaying, number, exc)
        return rows

    def done_replaying(self) -> None:
        """Remove the replayed file."""
        self.replaying.unlink(missing_ok=True)
        _fsync_dir(self.directory)

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def close(self) -> None:
        """Close the append handle."""
        self._close()


class SpooledLedger:
    """A ``LedgerStore`` whose writes fall back to a local spool; its reads are the wrapped ledger's."""

    def __init__(self, ledger: LedgerStore, directory: Path, *, retry_s: float = 2.0) -> None:
        self.ledger = ledger
        self.spool = Spool(directory)
        self.retry_s = retry_s
        self._lock = threading.Lock()
        self._replay_lock = threading.Lock()
        self._spooling = self.spool.has_rows()  # rows left by an earlier run: replay them first
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        if self._spooling:
            log.warning("ledger spool in %s holds %d rows from an earlier run; replaying", directory,
                        self.spool.pending())
            self._start()

    @property
    def spooling(self) -> bool:
        """True while rows wait in the spool (the database was unavailable)."""
        return self._spooling

    def record(self, row: LedgerRow) -> None:
        """Write one row to the database, or durably to the spool when the database cannot take it."""
        self._write([row], self.ledger.record, row)

    def record_many(self, rows: list[LedgerRow]) -> None:
        """Write several rows (one transaction), falling back to the spool like ``record``."""
        if rows:
            self._write(rows, self.ledger.record_many, rows)

    def _write(self, rows: list[LedgerRow], write: Callable[[_Argument], None], argument: _Argument) -> None:
        if not self._spooling:
            try:
                write(argument)
                return
            except LedgerUnavailableError as exc:
                log.error("ledger database unavailable, spooling rows to %s: %s", self.spool.active, exc)
        with self._lock:
            try:
                self.spool.append(rows)
            except OSError as exc:
                raise LedgerUnavailableError(
                    f"the ledger database is unavailable and its spool {self.spool.active} cannot be written: {exc}"
                ) from exc
            self._spooling = True
        self._start()
        self._wake.set()

    def replay(self) -> int:
        """Move spooled rows into the database; return how many were inserted (raises if it is still down)."""
        inserted = 0
        with self._replay_lock:
            while True:
                with self._lock:
                    if not self.spool.rotate():
                        self._spooling = False
                        return inserted
                rows = self.spool.read_replaying()
                for start in range(0, len(rows), BATCH):
                    inserted += self._insert_missing(rows[start:start + BATCH])
                self.spool.done_replaying()
                log.info("replayed %d spooled ledger rows", len(rows))

    def _insert_missing(self, rows: list[LedgerRow]) -> int:
        present = self.ledger.recorded_request_ids([row.request_id for row in rows])
        missing = [row for row in rows if row.request_id not in present]
        self.ledger.record_many(missing)
        return len(missing)

    # Reads go to the database: rows still in the spool are not in them until replayed (seconds, normally).

    def rows(self, since: datetime | None = None, until: datetime | None = None) -> Iterator[LedgerRow]:
        """Rows with ``since <= created_at < until``, oldest first, streamed."""
        return self.ledger.rows(since, until)

    def recent(self, limit: int, *, client: str | None = None) -> list[LedgerRow]:
        """The ``limit`` most recent rows (of one client key id), newest first."""
        return self.ledger.recent(limit, client=client)

    def recent_large_output_tokens(self, limit: int) -> list[int]:
        """Output tokens of the ``limit`` most recent answered large-tier requests, oldest first."""
        return self.ledger.recent_large_output_tokens(limit)

    def recorded_request_ids(self, request_ids: Sequence[str]) -> set[str]:
        """Those of ``request_ids`` that already have a row in the database."""
        return self.ledger.recorded_request_ids(request_ids)

    def day_route_totals(self, since: datetime | None = None, until: datetime | None = None, *,
                         client: str | None = None) -> list[DayRouteTotals]:
        """Per (UTC day, route) counts and ``ENERGY_COLUMNS`` sums of a period (of one client key id)."""
        return self.ledger.day_route_totals(since, until, client=client)

    def first_and_last_times(self, since: datetime | None = None, until: datetime | None = None, *,
                             client: str | None = None) -> tuple[datetime | None, datetime | None]:
        """Creation times of the first and the last request of a period (of one client key id)."""
        return self.ledger.first_and_last_times(since, until, client=client)

    def hourly_route_energy(self, since: datetime, *, client: str | None = None) -> list[HourRouteEnergy]:
        """Per (UTC hour, route) requests and energy from ``since`` on (of one client key id)."""
        return self.ledger.hourly_route_energy(since, client=client)

    def degraded_request_count(self, since: datetime, *, client: str | None = None) -> int:
        """Requests from ``since`` on (of one client key id) with a ``degraded:…`` flag."""
        return self.ledger.degraded_request_count(since, client=client)

    def tier_energy_means(self, since: datetime) -> dict[str, TierEnergy]:
        """Per route: successful, non-escalated requests from ``since`` on and their mean energy."""
        return self.ledger.tier_energy_means(since)

    def logged_scores(self, since: datetime | None, limit: int) -> list[tuple[float, float, float]]:
        """(search, small, large) scores of the ``limit`` most recent classified, not forced, requests."""
        return self.ledger.logged_scores(since, limit)

    def replay_cells(self, route_large: float, route_search: float, since: datetime | None = None,
                     until: datetime | None = None) -> ReplayCells:
        """One scan: scored, not forced, answered requests per cell, their first tier under proposed thresholds."""
        return self.ledger.replay_cells(route_large, route_search, since, until)

    # Thresholds are never spooled: a change the database cannot take is refused (503) and changes nothing.

    def threshold_version(self) -> int:
        """The persisted thresholds' version (0 before any change)."""
        return self.ledger.threshold_version()

    def persisted_thresholds(self) -> tuple[int, dict[str, float]]:
        """The version and every persisted threshold value, read consistently."""
        return self.ledger.persisted_thresholds()

    def save_thresholds(self, changes: Mapping[str, float], *, actor: str, reason: str,
                        fallback: Mapping[str, float]) -> ThresholdChange:
        """Persist validated ``changes`` as one new audited version; ``fallback`` gives never-persisted old values."""
        return self.ledger.save_thresholds(changes, actor=actor, reason=reason, fallback=fallback)

    def threshold_history(self, limit: int = 100) -> list[ThresholdChange]:
        """The most recent ``limit`` threshold changes, newest first."""
        return self.ledger.threshold_history(limit)

    def ping(self) -> bool:
        """True when the database answers."""
        return self.ledger.ping()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="frugal-ledger-spool", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.retry_s)
            self._wake.clear()
            if self._stop.is_set() or not self._spooling:
                continue
            self._stop.wait(min(self.retry_s, 0.5))  # let a just-failed database settle before retrying
            try:
                if self.ledger.ping():
                    self.replay()
            except Exception as exc:  # noqa: BLE001 - the replayer must outlive any failure; rows stay spooled
                log.warning("ledger spool replay failed, will retry: %s", exc)

    def state(self) -> dict[str, Any]:
        """For ``/healthz``: whether rows are spooled and how many."""
        pending = self.spool.pending() if self._spooling else 0
        return {"spooling": self._spooling, "spooled_rows": pending, "spool": str(self.spool.active)}

    def close(self) -> None:
        """Stop the replayer (after one last attempt) and close the database."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._spooling:
            try:
                if self.ledger.ping():
                    self.replay()
            except Exception as exc:  # noqa: BLE001 - rows stay in the spool for the next start
                log.warning("ledger spool not replayed at shutdown (kept for the next start): %s", exc)
        with self._lock:
            self.spool.close()
        self.ledger.close()
