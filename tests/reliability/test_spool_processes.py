"""The ledger spool shared by processes (``frugal serve --workers``, replicas on one data directory).

Two processes append rows while a third rotates and replays the file over and over: every row is read
exactly once. Before the spool took a ``flock`` and reopened a rotated file, an appender kept writing to
the file it had open after another process had moved it aside for replay, and those rows were lost.
"""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime
from pathlib import Path

from router.ledger.row import LedgerRow
from router.ledger.spool_file import Spool

ROWS = 400


def _row(request_id: str) -> LedgerRow:
    return LedgerRow(request_id=request_id, created_at=datetime.now(UTC), requested_model="frugal-auto",
                     route="small", forced=False, status=200)


def _append(directory: str, prefix: str) -> None:
    spool = Spool(Path(directory))
    for i in range(ROWS):
        spool.append([_row(f"{prefix}-{i}")], fsync=False)
    spool.close()


def test_rows_appended_by_two_processes_are_replayed_once_while_a_third_rotates() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        context = multiprocessing.get_context("fork")
        writers = [context.Process(target=_append, args=(directory, prefix)) for prefix in ("a", "b")]
        for writer in writers:
            writer.start()
        replayer = Spool(Path(directory))
        seen: list[str] = []

        def drain() -> None:
            with replayer.replay_turn() as mine:
                assert mine
                while replayer.rotate():
                    seen.extend(row.request_id for row in replayer.read_replaying())
                    replayer.done_replaying()

        while any(writer.is_alive() for writer in writers):
            drain()
        for writer in writers:
            writer.join(timeout=60)
            assert writer.exitcode == 0
        drain()
    expected = [f"{prefix}-{i}" for prefix in ("a", "b") for i in range(ROWS)]
    assert len(seen) == len(expected) and sorted(seen) == sorted(expected)


def test_only_one_process_replays_at_a_time(tmp_path: Path) -> None:
    first, second = Spool(tmp_path), Spool(tmp_path)
    with first.replay_turn() as mine, second.replay_turn() as theirs:
        assert mine and not theirs
    with second.replay_turn() as theirs:
        assert theirs
