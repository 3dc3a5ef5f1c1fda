"""The ledger database goes away (a TCP proxy in front of the real PostgreSQL is stopped): answered requests
are spooled to an fsync'd file and replayed when it comes back, also across a restart; with the spool
off, requests are refused with 503 rather than answered without a row."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import echo_settings
from tests.reliability.conftest import TcpProxy
from tests.reliability.test_limits import assert_openai_error, user


def ask(client: Any, n: int) -> list[str]:
    ids = []
    for i in range(n):
        response = client.post("/v1/chat/completions", json={"model": "frugal-small", "messages": user(f"hi {i}")})
        assert response.status_code == 200, response.text
        ids.append(response.json()["id"])
    return ids


def ledger_ids(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [row[0] for row in conn.execute(text("SELECT request_id FROM requests WHERE status = 200"))]
    finally:
        engine.dispose()


def wait_until(predicate: Any, timeout: float) -> float:
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, f"not within {timeout} s"
        time.sleep(0.1)
    return time.monotonic() - start


@pytest.mark.postgres
@pytest.mark.slow
def test_rows_are_spooled_during_an_outage_and_replayed_live_and_after_a_restart(
    tmp_path: Path, proxied_pg: tuple[TcpProxy, str, str]
) -> None:
    from fastapi.testclient import TestClient

    from router.app import create_app

    proxy, via_proxy, direct = proxied_pg
    settings = echo_settings(tmp_path, ledger_url=via_proxy)
    spool = settings.data_dir / "ledger-spool.jsonl"
    answered: list[str] = []
    with TestClient(create_app(settings)) as client:
        answered += ask(client, 3)
        proxy.stop()
        answered += ask(client, 5)  # the database is gone: still answered, rows spooled
        ledger = client.get("/healthz").json()["ledger"]
        assert ledger["spooling"] and ledger["spooled_rows"] == 5 and spool.exists()
        assert len(ledger_ids(direct)) == 3
        proxy.start()
        wait_until(lambda: not client.get("/healthz").json()["ledger"]["spooling"], timeout=15)
        assert sorted(ledger_ids(direct)) == sorted(answered)

        proxy.stop()
        answered += ask(client, 4)  # down again, and the replica is restarted before it comes back
    assert spool.exists() or (settings.data_dir / "ledger-spool.replaying.jsonl").exists()
    proxy.start()
    with TestClient(create_app(settings)) as client:
        wait_until(lambda: not client.get("/healthz").json()["ledger"]["spooling"], timeout=15)
        answered += ask(client, 1)
    ids = ledger_ids(direct)
    assert sorted(ids) == sorted(answered) and len(ids) == len(set(ids)) == 13  # none lost, none twice


@pytest.mark.postgres
def test_without_the_spool_an_outage_is_a_503_not_a_silent_loss(
    tmp_path: Path, proxied_pg: tuple[TcpProxy, str, str]
) -> None:
    from fastapi.testclient import TestClient

    from router.app import create_app

    proxy, via_proxy, direct = proxied_pg
    with TestClient(create_app(echo_settings(tmp_path, ledger_url=via_proxy, ledger_spool=False))) as client:
        answered = ask(client, 2)
        proxy.stop()
        refused = client.post("/v1/chat/completions", json={"model": "frugal-small", "messages": user()})
        proxy.start()
    assert_openai_error(refused, 503, "ledger_unavailable")
    assert sorted(ledger_ids(direct)) == sorted(answered)


def test_a_spool_left_by_a_crash_is_replayed_once_and_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from router.ledger.row import LedgerRow
    from router.ledger.spool import SpooledLedger
    from router.ledger.spool_file import row_to_json
    from router.ledger.store import Ledger

    def row(i: int) -> LedgerRow:
        return LedgerRow(request_id=f"req-{i}", created_at=datetime.now(UTC), requested_model="frugal-auto",
                         route="small", forced=False, status=200)

    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    first = Ledger.open(url)
    first.record(row(1))  # committed just before the crash that left it in the spool too
    first.close()
    lines = [row_to_json(row(1)), row_to_json(row(2)), row_to_json(row(3))[:40]]  # the last write was torn
    (tmp_path / "ledger-spool.replaying.jsonl").write_text("\n".join(lines[:2]) + "\n")
    (tmp_path / "ledger-spool.jsonl").write_text(lines[2])
    ledger = SpooledLedger(Ledger.open(url), tmp_path, retry_s=0.1)
    try:
        wait_until(lambda: not ledger.spooling, timeout=10)
        assert sorted(r.request_id for r in ledger.rows()) == ["req-1", "req-2"]
        assert not (tmp_path / "ledger-spool.jsonl").exists() and not (tmp_path / "ledger-spool.replaying.jsonl").exists()
    finally:
        ledger.close()
