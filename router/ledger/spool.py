"""A durable local spool in front of the ledger database, so that an answered request never loses its row.

Rows are committed by one writer thread, in groups (``router.ledger.writer``). An answered request waits
for its row at most ``write_timeout_s``: when the database cannot take it (PostgreSQL restarting, a
network partition, a locked SQLite file) or does not answer in time (a stalled connection), the row is
appended to ``<data_dir>/ledger-spool.jsonl`` and fsync'd before the request is answered; a background
thread replays the spool into the database once it answers again, skipping rows whose ``request_id`` is
already there (a stalled commit that completes late, or a crash between the database commit and the
spool's removal, leaves a row in both). While rows are pending, new rows go straight to the spool, which
keeps the outage to one failed or timed-out attempt and preserves order. Only when the spool cannot be
written either (disk full), or is turned off (``ledger_spool: false``), is the request refused with
``LedgerUnavailableError`` (503): never a silent loss.

Rows of requests that were not answered (errors, 429s) are written without waiting (``durable=False``):
shedding load must cost less than serving it, so they ride along with the next group commit and are not
fsync'd on their own; a ``kill -9`` within that window may lose them, never an answered request's row.
A damaged SQLite file (``LedgerCorruptError``) is a state of its own: rows keep going to the spool,
``state()`` says ``corrupt`` with the way out, and the log says so once a minute rather than every retry.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any

from router.core.errors import LedgerCorruptError, LedgerUnavailableError
from router.ledger.interface import (
    DayRouteTotals,
    HourRouteEnergy,
    LedgerStore,
    ReplayCells,
    ThresholdChange,
    TierEnergy,
)
from router.ledger.row import LedgerRow
from router.ledger.spool_file import Spool
from router.ledger.writer import GroupCommitWriter

log = logging.getLogger(__name__)

BATCH = 500
WRITE_TIMEOUT_S = 2.0
CORRUPT_LOG_EVERY_S = 60.0


class SpooledLedger:
    """A ``LedgerStore`` whose writes are group-committed with a deadline and fall back to a local spool.

    Its reads are the wrapped ledger's. ``spool=False`` keeps the writer and the deadline but refuses a
    row the database cannot take in time (503) instead of spooling it.
    """

    def __init__(self, ledger: LedgerStore, directory: Path, *, retry_s: float = 2.0,
                 write_timeout_s: float = WRITE_TIMEOUT_S, spool: bool = True) -> None:
        self.ledger = ledger
        self.spool = Spool(directory)
        self.retry_s = retry_s
        self.write_timeout_s = write_timeout_s
        self.spool_enabled = spool
        self._lock = threading.Lock()
        self._replay_lock = threading.Lock()
        self._spooling = spool and self.spool.has_rows()  # rows left by an earlier run: replay them first
        self._spooled_rows = self.spool.pending() if self._spooling else 0
        self._corrupt: str | None = None
        self._corrupt_logged = 0.0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._writer = GroupCommitWriter(self._commit)
        if self._spooling:
            log.warning("ledger spool in %s holds %d rows from an earlier run; replaying", directory,
                        self._spooled_rows)
            self._start()

    @property
    def spooling(self) -> bool:
        """True while rows wait in the spool (the database was unavailable)."""
        return self._spooling

    @property
    def spooled_rows(self) -> int:
        """Rows waiting in the spool now."""
        return self._spooled_rows if self._spooling else 0

    def record(self, row: LedgerRow) -> None:
        """Write one row durably (database or spool) before returning, waiting at most ``write_timeout_s``."""
        if self._spooling:
            self._append([row])
            return
        future = self._writer.submit([row])
        try:
            future.result(timeout=self.write_timeout_s)
        except TimeoutError:
            self._timed_out(future, [row])

    async def arecord(self, row: LedgerRow, *, durable: bool = True) -> None:
        """``record`` for the event loop: awaits the group commit (``durable``) or only queues the row."""
        if not durable:
            self.record_later(row)
            return
        if self._spooling:
            await asyncio.to_thread(self._append, [row])
            return
        future = self._writer.submit([row])
        waiting = asyncio.wrap_future(future)
        done, _ = await asyncio.wait({waiting}, timeout=self.write_timeout_s)
        if not done:
            await asyncio.to_thread(self._timed_out, future, [row])
            return
        waiting.result()

    def record_later(self, row: LedgerRow) -> None:
        """Queue a row of a request that was not answered; never blocks on the database, never fsyncs alone."""
        if self._spooling:
            try:
                self._append([row], fsync=False)
            except LedgerUnavailableError as exc:
                log.error("could not keep the row of request %s: %s", row.request_id, exc)
            return
        future = self._writer.submit([row])
        future.add_done_callback(_log_failure)

    def record_many(self, rows: list[LedgerRow]) -> None:
        """Write several rows (one transaction), falling back to the spool like ``record``."""
        if not rows:
            return
        if self._spooling:
            self._append(rows)
            return
        future = self._writer.submit(rows)
        try:
            future.result(timeout=max(self.write_timeout_s, 30.0))
        except TimeoutError:
            self._timed_out(future, rows)

    def _commit(self, rows: list[LedgerRow]) -> None:
        """On the writer thread: commit to the database, or spool when it cannot take the rows."""
        if self._spooling:
            self._append(rows)
            return
        try:
            self.ledger.record_many(rows)
            return
        except LedgerCorruptError as exc:
            self._note_corrupt(str(exc))
        except LedgerUnavailableError as exc:
            if not self.spool_enabled:
                raise
            log.error("ledger database unavailable, spooling rows to %s: %s", self.spool.active, exc)
        self._append(rows)

    def _timed_out(self, future: Future[None], rows: list[LedgerRow]) -> None:
        """The database did not answer within ``write_timeout_s``: take the rows out of its hands."""
        future.cancel()  # not started yet: the writer skips them; already running: the replay dedupes them
        if not self.spool_enabled:
            raise LedgerUnavailableError(
                f"the ledger database did not answer within {self.write_timeout_s:g} s (ledger.write_timeout_s)")
        if not self._spooling:
            log.error("the ledger database did not answer within %g s; spooling rows to %s",
                      self.write_timeout_s, self.spool.active)
        self._append(rows)

    def _append(self, rows: list[LedgerRow], *, fsync: bool = True) -> None:
        if not self.spool_enabled:
            raise LedgerUnavailableError("the ledger database cannot take the row and ledger_spool is off")
        with self._lock:
            try:
                self.spool.append(rows, fsync=fsync)
            except OSError as exc:
                raise LedgerUnavailableError(
                    f"the ledger database is unavailable and its spool {self.spool.active} cannot be written: {exc}"
                ) from exc
            self._spooled_rows = (self._spooled_rows if self._spooling else 0) + len(rows)
            self._spooling = True
        self._start()
        self._wake.set()

    def _note_corrupt(self, detail: str | None = None) -> None:
        """Remember that the database file is damaged; say so in the log at most once a minute."""
        if detail is not None:
            self._corrupt = detail
        now = time.monotonic()
        if self._corrupt and now - self._corrupt_logged >= CORRUPT_LOG_EVERY_S:
            self._corrupt_logged = now
            log.error("%s; %d rows spooled so far", self._corrupt, self.spooled_rows)

    def replay(self) -> int:
        """Move spooled rows into the database; return how many were inserted (raises if it is still down)."""
        inserted = 0
        with self._replay_lock, self.spool.replay_turn() as mine:
            if not mine:  # another process is replaying the same directory's spool: it will, or we will later
                return inserted
            while True:
                with self._lock:
                    if not self.spool.rotate():
                        self._spooling = False
                        self._spooled_rows = 0
                        self._corrupt = None
                        return inserted
                rows = list({row.request_id: row for row in self.spool.read_replaying()}.values())
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
    # Those that report on requests first let the writer commit what is queued (``_settle``), so a read
    # made after a request was answered or refused sees its row.

    def _settle(self) -> None:
        """Wait (at most ``write_timeout_s``) until the rows queued so far are committed."""
        if self._spooling:
            return
        try:
            self._writer.run_job(_nothing).result(timeout=self.write_timeout_s)
        except TimeoutError:
            pass  # a stalled database: read what it has

    def rows(self, since: datetime | None = None, until: datetime | None = None) -> Iterator[LedgerRow]:
        """Rows with ``since <= created_at < until``, oldest first, streamed."""
        self._settle()
        return self.ledger.rows(since, until)

    def recent(self, limit: int, *, client: str | None = None) -> list[LedgerRow]:
        """The ``limit`` most recent rows (of one client key id), newest first."""
        self._settle()
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
        self._settle()
        return self.ledger.day_route_totals(since, until, client=client)

    def first_and_last_times(self, since: datetime | None = None, until: datetime | None = None, *,
                             client: str | None = None) -> tuple[datetime | None, datetime | None]:
        """Creation times of the first and the last request of a period (of one client key id)."""
        self._settle()
        return self.ledger.first_and_last_times(since, until, client=client)

    def hourly_route_energy(self, since: datetime, *, client: str | None = None) -> list[HourRouteEnergy]:
        """Per (UTC hour, route) requests and energy from ``since`` on (of one client key id)."""
        self._settle()
        return self.ledger.hourly_route_energy(since, client=client)

    def degraded_request_count(self, since: datetime, *, client: str | None = None) -> int:
        """Requests from ``since`` on (of one client key id) with a ``degraded:…`` flag."""
        self._settle()
        return self.ledger.degraded_request_count(since, client=client)

    def tier_energy_means(self, since: datetime) -> dict[str, TierEnergy]:
        """Per route: successful, non-escalated requests from ``since`` on and their mean energy."""
        self._settle()
        return self.ledger.tier_energy_means(since)

    def logged_scores(self, since: datetime | None, limit: int) -> list[tuple[float, float, float]]:
        """(search, small, large) scores of the ``limit`` most recent classified, not forced, requests."""
        self._settle()
        return self.ledger.logged_scores(since, limit)

    def replay_cells(self, route_large: float, route_search: float, since: datetime | None = None,
                     until: datetime | None = None) -> ReplayCells:
        """One scan: scored, not forced, answered requests per cell, their first tier under proposed thresholds."""
        self._settle()
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
                    self._writer.run_job(self.replay).result()  # after any stalled commit: no duplicate rows
            except LedgerCorruptError as exc:
                self._note_corrupt(str(exc))
            except Exception as exc:  # noqa: BLE001 - the replayer must outlive any failure; rows stay spooled
                if self._corrupt:
                    self._note_corrupt()  # known: once a minute, not every retry
                else:
                    log.warning("ledger spool replay failed, will retry: %s", exc)

    def state(self) -> dict[str, Any]:
        """For ``/healthz``: ok, spooling, stalled (a write outlived ``write_timeout_s``) or corrupt, and the rows spooled."""
        stalled_s = self._writer.busy_for()
        status = ("corrupt" if self._corrupt else "stalled" if stalled_s > self.write_timeout_s
                  else "spooling" if self._spooling else "ok")
        state: dict[str, Any] = {"status": status, "spooling": self._spooling, "spooled_rows": self.spooled_rows,
                                 "spool": str(self.spool.active)}
        if stalled_s > self.write_timeout_s:
            state["stalled_s"] = round(stalled_s, 1)
        if self._corrupt:
            state["detail"] = self._corrupt
        return state

    def close(self) -> None:
        """Commit what is queued, stop the replayer (after one last attempt) and close the database."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if not self._writer.close(timeout=10):
            log.error("the ledger writer is stalled at shutdown; rows it holds that were not answered may be lost")
        if self._spooling:
            try:
                if self.ledger.ping():
                    self.replay()
            except Exception as exc:  # noqa: BLE001 - rows stay in the spool for the next start
                log.warning("ledger spool not replayed at shutdown (kept for the next start): %s", exc)
        with self._lock:
            self.spool.close()
        self.ledger.close()


def _log_failure(future: Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("a ledger row of a request that was not answered could not be kept: %s", future.exception())


def _nothing() -> None:
    """A writer job that only marks a point in its queue."""
