"""Issue 25 (1), (5), (8): a ledger database that stops answering, refusals that must stay cheap, a damaged file.

(1) A TCP proxy in front of the real PostgreSQL is paused (``kill -STOP``: connections stay open, nothing
answers): every request is still answered within ``ledger.write_timeout_s`` + 1 s, its row is spooled, and
all rows reach the database once it answers again, none twice. Before the fix every chat request timed
out and ``/healthz`` hung for as long as the stall lasted. (5) A request that is refused does not wait for
a commit of its own. (8) A damaged SQLite file is a ``corrupt`` state in ``/healthz`` and the metrics, rows
are spooled, and moving the file aside and restarting recovers every row.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import LiveServer, echo_settings
from tests.reliability.conftest import TcpProxy
from tests.reliability.test_ledger_outage import wait_until

WRITE_TIMEOUT_S = 1.0


def chat(client: httpx.Client, text_: str, model: str = "frugal-small") -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.post("/v1/chat/completions", json={"model": model,
                                                          "messages": [{"role": "user", "content": text_}]})
    return response, time.monotonic() - started


def all_ids(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [row[0] for row in conn.execute(text("SELECT request_id FROM requests"))]
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.slow
def test_a_stalled_database_delays_no_request_beyond_the_write_timeout_and_loses_no_row(
    tmp_path: Path, proxied_pg: tuple[TcpProxy, str, str]
) -> None:
    from router.app import create_app

    proxy, via_proxy, direct = proxied_pg
    settings = echo_settings(tmp_path, ledger_url=via_proxy, ledger={"write_timeout_s": WRITE_TIMEOUT_S})
    answered: list[str] = []
    slowest = 0.0
    lock = threading.Lock()
    try:
        with LiveServer(create_app(settings)) as live, httpx.Client(base_url=live.url, timeout=30) as client:
            for i in range(5):
                response, _ = chat(client, f"before {i}")
                assert response.status_code == 200
                answered.append(response.json()["id"])
            proxy.pause()

            def worker(n: int) -> None:
                nonlocal slowest
                with httpx.Client(base_url=live.url, timeout=30) as own:
                    for i in range(8):
                        response, seconds = chat(own, f"stalled {n}-{i}", "frugal-auto" if i % 2 else "frugal-small")
                        assert response.status_code == 200, response.text
                        with lock:
                            answered.append(response.json()["id"])
                            slowest = max(slowest, seconds)

            threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
            health_started = time.monotonic()
            health = client.get("/healthz")
            health_s = time.monotonic() - health_started
            ledger = health.json()["ledger"]
            assert ledger["spooling"] and ledger["spooled_rows"] >= 1, ledger
            assert ledger["status"] in ("stalled", "spooling")
            proxy.resume()
            wait_until(lambda: not client.get("/healthz").json()["ledger"]["spooling"], timeout=60)
    finally:
        proxy.resume()
    assert len(answered) == 5 + 4 * 8
    assert slowest <= WRITE_TIMEOUT_S + 1.0, f"a request waited {slowest:.2f} s during the stall"
    assert health_s <= WRITE_TIMEOUT_S + 1.0, f"/healthz took {health_s:.2f} s during the stall"
    ids = all_ids(direct)
    assert sorted(set(ids) & set(answered)) == sorted(answered)  # every answered row arrived
    assert len(ids) == len(set(ids))  # a late commit and its spooled copy are one row


@pytest.fixture
def locked_sqlite(tmp_path: Path) -> Iterator[tuple[Path, sqlite3.Connection]]:
    """A SQLite ledger path and a connection that can hold its write lock (``BEGIN IMMEDIATE``)."""
    from router.ledger.store import Ledger

    path = tmp_path / "data" / "ledger.sqlite3"
    Ledger.open(f"sqlite:///{path}").close()
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    yield path, holder
    holder.close()


def test_a_locked_database_spools_answered_rows_in_time_and_refusals_do_not_wait(
    tmp_path: Path, locked_sqlite: tuple[Path, sqlite3.Connection]
) -> None:
    """SQLite's own busy timeout (5 s) is longer than the write timeout: the deadline, not the driver, decides."""
    from router.app import create_app

    path, holder = locked_sqlite
    settings = echo_settings(tmp_path, ledger={"write_timeout_s": WRITE_TIMEOUT_S},
                             large={"backend": "echo", "enabled": False})
    with LiveServer(create_app(settings)) as live, httpx.Client(base_url=live.url, timeout=30) as client:
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            answered, answered_s = chat(client, "while locked")
            refused, refused_s = chat(client, "needs the large tier", "frugal-large")
            state = client.get("/healthz").json()["ledger"]
        finally:
            holder.execute("ROLLBACK")
        assert answered.status_code == 200 and answered_s <= WRITE_TIMEOUT_S + 1.0, answered_s
        assert state["spooling"]
        assert refused.status_code == 503
        assert refused_s < WRITE_TIMEOUT_S, f"a refusal waited {refused_s:.2f} s for the ledger"  # not the timeout
        wait_until(lambda: not client.get("/healthz").json()["ledger"]["spooling"], timeout=30)
    rows = dict(sqlite3.connect(path).execute("SELECT request_id, status FROM requests").fetchall())
    assert rows[answered.json()["id"]] == 200 and 503 in rows.values()


def damage_requests_table(path: Path) -> None:
    """Overwrite the root page of the ``requests`` table, as a bad disk or a stray write would: the file opens
    and answers ``SELECT 1``, but no row can be inserted (the state the attack run found)."""
    with sqlite3.connect(path) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'requests'").fetchone()[0]
    with open(path, "r+b") as handle:
        handle.seek((root - 1) * page_size)
        handle.write((b"\xffdamaged!" * page_size)[:page_size])


def test_a_damaged_sqlite_file_is_an_alerting_state_with_a_way_out(tmp_path: Path) -> None:
    from router.app import create_app

    settings = echo_settings(tmp_path)
    path = settings.data_dir / "ledger.sqlite3"
    answered: list[str] = []
    with LiveServer(create_app(settings)) as live, httpx.Client(base_url=live.url, timeout=30) as client:
        for i in range(3):
            answered.append(chat(client, f"before {i}")[0].json()["id"])
    damage_requests_table(path)
    with LiveServer(create_app(settings)) as live, httpx.Client(base_url=live.url, timeout=30) as client:
        for i in range(4):
            response, _ = chat(client, f"after {i}")
            assert response.status_code == 200, response.text  # answered: the rows are spooled
            answered.append(response.json()["id"])
        health = client.get("/healthz").json()
        metrics = client.get("/metrics").text
    ledger = health["ledger"]
    assert ledger["status"] == "corrupt" and health["status"] == "degraded", health
    assert "damaged" in ledger["detail"] and "RELIABILITY.md" in ledger["detail"]
    assert ledger["spooled_rows"] == 4
    assert 'frugal_ledger_status{status="corrupt"} 1.0' in metrics
    assert "frugal_ledger_spooled_rows 4.0" in metrics

    # The documented way out: stop, move the damaged file aside, start again; the spool replays.
    for suffix in ("", "-wal", "-shm"):
        moved = Path(f"{path}{suffix}")
        if moved.exists():
            moved.rename(tmp_path / f"damaged{suffix}")
    with LiveServer(create_app(settings)) as live, httpx.Client(base_url=live.url, timeout=30) as client:
        wait_until(lambda: not client.get("/healthz").json()["ledger"]["spooling"], timeout=30)
        assert client.get("/healthz").json()["ledger"]["status"] == "ok"
    rows = [row[0] for row in sqlite3.connect(path).execute("SELECT request_id FROM requests")]
    assert sorted(rows) == sorted(answered[3:])  # the spooled rows, once; the first three are in the damaged file
