"""Group commit: one thread writes every ledger row, committing the rows queued meanwhile in one transaction.

Two things follow from one writer thread. Under load, N concurrent requests cost one transaction (one
fsync) instead of N serialised ones. And a database that stops answering (a stalled connection, a lock
held elsewhere) blocks this thread only: callers wait for their row with a deadline
(``router.ledger.spool.SpooledLedger``) and never tie up the event loop's worker threads. Jobs that must
not overlap a write (the spool's replay) run on the same thread, in queue order.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from router.ledger.row import LedgerRow

log = logging.getLogger(__name__)

MAX_BATCH = 500


@dataclass
class _Item:
    rows: list[LedgerRow] = field(default_factory=list)
    job: Callable[[], Any] | None = None
    future: Future[Any] = field(default_factory=Future)


class GroupCommitWriter:
    """Commits queued rows in batches with ``commit(rows)`` on its own thread; each submit gets a ``Future``.

    A future cancelled before its batch starts is skipped (its caller stored the rows elsewhere).
    """

    def __init__(self, commit: Callable[[list[LedgerRow]], None], *, max_batch: int = MAX_BATCH,
                 name: str = "frugal-ledger-writer") -> None:
        self._commit = commit
        self._max_batch = max(1, max_batch)
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._held: _Item | None = None  # a job met while gathering a batch: it runs after that batch
        self._busy_since: float | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, rows: list[LedgerRow]) -> Future[None]:
        """Queue rows for the next commit; the future completes when they are committed (or holds the error)."""
        item = _Item(rows=list(rows))
        self._put(item)
        return item.future

    def run_job(self, job: Callable[[], Any]) -> Future[Any]:
        """Run ``job`` on the writer thread after everything queued before it."""
        item = _Item(job=job)
        self._put(item)
        return item.future

    def busy_for(self) -> float:
        """Seconds the current commit or job has been running (0 when idle): a stalled database shows here."""
        since = self._busy_since
        return 0.0 if since is None else time.monotonic() - since

    def close(self, timeout: float = 10.0) -> bool:
        """Commit what is queued and stop; False if the thread did not finish within ``timeout`` (a stall)."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _put(self, item: _Item) -> None:
        if self._closed:
            item.future.set_exception(RuntimeError("the ledger writer is closed"))
            return
        self._queue.put(item)

    def _next(self) -> _Item | None:
        if self._held is not None:
            item, self._held = self._held, None
            return item
        return self._queue.get()

    def _run(self) -> None:
        while True:
            item = self._next()
            if item is None:
                return
            if item.job is not None:
                self._run_job(item)
                continue
            batch, stop = self._gather(item)
            self._write(batch)
            if stop:
                return

    def _gather(self, first: _Item) -> tuple[list[_Item], bool]:
        batch, size = [first], len(first.rows)
        while size < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            if item.job is not None:
                self._held = item
                break
            batch.append(item)
            size += len(item.rows)
        return batch, False

    def _write(self, batch: list[_Item]) -> None:
        live = [item for item in batch if item.future.set_running_or_notify_cancel()]
        rows = [row for item in live for row in item.rows]
        if not rows:
            return
        self._busy_since = time.monotonic()
        try:
            self._commit(rows)
        except BaseException as exc:  # noqa: BLE001 - every waiter hears about it; the thread lives on
            for item in live:
                item.future.set_exception(exc)
        else:
            for item in live:
                item.future.set_result(None)
        finally:
            self._busy_since = None

    def _run_job(self, item: _Item) -> None:
        if not item.future.set_running_or_notify_cancel():
            return
        self._busy_since = time.monotonic()
        try:
            result = item.job() if item.job is not None else None
        except BaseException as exc:  # noqa: BLE001 - the caller gets it through the future
            item.future.set_exception(exc)
        else:
            item.future.set_result(result)
        finally:
            self._busy_since = None
