"""The spool file: an append-only, fsync'd JSONL file of ledger rows, rotated aside while it is replayed.

Several processes (``frugal serve --workers``, replicas sharing a data directory) may spool at once: an
append and the rotation take an exclusive ``flock`` on ``ledger-spool.lock``, and an append reopens the
file when it was rotated away under it, so no row is written to a file already being replayed. Replaying
the rotated file is one process's job at a time (a second lock, taken without waiting).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from router.ledger.row import LedgerRow

log = logging.getLogger(__name__)

SPOOL_NAME = "ledger-spool.jsonl"
REPLAYING_NAME = "ledger-spool.replaying.jsonl"
LOCK_NAME = "ledger-spool.lock"
REPLAY_LOCK_NAME = "ledger-spool.replay.lock"


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

    @contextlib.contextmanager
    def _flock(self, name: str, *, wait: bool = True) -> Iterator[bool]:
        """Hold an exclusive lock on ``directory/name`` (True), or, with ``wait=False``, say it is taken (False)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / name, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # releases the lock

    def replay_turn(self) -> contextlib.AbstractContextManager[bool]:
        """True while this process may replay (no other process is replaying); never waits."""
        return self._flock(REPLAY_LOCK_NAME, wait=False)

    def append(self, rows: list[LedgerRow], *, fsync: bool = True) -> None:
        """Write rows and (unless told not to) fsync them before returning (the caller holds the spooled ledger's lock)."""
        with self._flock(LOCK_NAME):
            if self._handle is not None and not self._still_active():
                self._close()  # another process rotated the file away: write to the new one
            if self._handle is None:
                created = not self.active.exists()
                self._handle = open(self.active, "a", encoding="utf-8")  # noqa: SIM115 - kept open between appends
                if created:
                    _fsync_dir(self.directory)
            self._handle.write("".join(row_to_json(row) + "\n" for row in rows))
            self._handle.flush()
            if fsync:
                os.fsync(self._handle.fileno())

    def _still_active(self) -> bool:
        try:
            return os.stat(self.active).st_ino == os.fstat(self._handle.fileno()).st_ino
        except FileNotFoundError:
            return False

    def rotate(self) -> bool:
        """Move the active file aside for replay (unless a replay is already pending); True if there is one."""
        with self._flock(LOCK_NAME):
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
