"""The ledger and the report against the real PostgreSQL on 127.0.0.1:5432 (fails, never skips, if it is down).

Each run works in its own schema (``search_path`` set through the URL) and drops it afterwards.
Override the server with ``FRUGAL_TEST_POSTGRES_URL`` (a ``postgresql+psycopg://`` URL without options).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from test_ledger import T0, sample_row
from test_report import check_known_totals, known_rows

from router.core.errors import LedgerUnavailableError
from router.ledger.migrations import MIGRATIONS, applied, migrate
from router.ledger.store import Ledger
from router.report import build_report

BASE_URL = os.environ.get("FRUGAL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    schema = f"frugal_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(BASE_URL + "?connect_timeout=5")
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        pytest.fail(f"PostgreSQL at {BASE_URL} is unreachable ({exc.orig}); these tests fail rather than skip")
    try:
        yield f"{BASE_URL}?connect_timeout=5&options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_round_trip_periods_and_recent(pg_url: str) -> None:
    ledger = Ledger.open(pg_url)
    try:
        rows = [sample_row(i, T0 + timedelta(hours=i), prompt_text=f"p{i}" if i == 0 else None) for i in range(4)]
        for row in rows:
            ledger.record(row)
        assert list(ledger.rows()) == rows
        assert [r.request_id for r in ledger.rows(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3))] == [
            "req-1", "req-2"]
        assert [r.request_id for r in ledger.recent(2)] == ["req-3", "req-2"]
        with ledger.engine.connect() as conn:
            assert conn.execute(text("SELECT current_schema()")).scalar().startswith("frugal_test_")
    finally:
        ledger.close()


def test_migrations_are_idempotent_on_postgres(pg_url: str) -> None:
    first = Ledger.open(pg_url)
    first.close()
    second = Ledger.open(pg_url)
    try:
        assert applied(second.engine) == [name for name, _ in MIGRATIONS]
        assert migrate(second.engine) == []
    finally:
        second.close()


def test_report_totals_on_postgres(pg_url: str) -> None:
    ledger = Ledger.open(pg_url)
    try:
        ledger.record_many(known_rows())
        check_known_totals(build_report(ledger, since=T0.replace(month=5, day=2)))
    finally:
        ledger.close()


def test_record_failure_on_postgres_raises_ledger_unavailable(pg_url: str) -> None:
    ledger = Ledger.open(pg_url)
    try:
        with ledger.engine.begin() as conn:
            conn.execute(text("DROP TABLE requests"))
        with pytest.raises(LedgerUnavailableError):
            ledger.record(sample_row(1))
    finally:
        ledger.close()


def test_a_kept_connection_the_server_dropped_costs_no_row(pg_url: str) -> None:
    ledger = Ledger.open(pg_url)
    try:
        ledger.record(sample_row(1))
        kept = ledger._inserter._connection.dbapi_connection.info.backend_pid  # the writer's kept connection
        with ledger.engine.connect() as conn:  # as a PostgreSQL restart or an idle timeout would
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": kept}).scalar() is True
        ledger.record(sample_row(2))  # retried once on a new connection: nothing was committed on the dead one
        assert [r.request_id for r in ledger.rows()] == ["req-1", "req-2"]
    finally:
        ledger.close()


def test_rollup_rebuild_and_edges_agree_with_python_sums_on_postgres(pg_url: str) -> None:
    import random
    import sys
    from datetime import UTC, datetime
    from pathlib import Path

    from test_report import _check_against_python

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from ledger import synthetic_row

    rng = random.Random(5)
    ledger = Ledger.open(pg_url)
    try:
        ledger.record_many([synthetic_row(rng, i) for i in range(1500)])
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        window = (t0 + timedelta(days=20, hours=5, minutes=31), t0 + timedelta(days=200, hours=1, seconds=7))
        _check_against_python(ledger, *window)
        ledger.rebuild_rollup()  # the SQL back-fill (to_char hours) must match the Python-side hour keys
        _check_against_python(ledger, *window)
        _check_against_python(ledger, None, None)
    finally:
        ledger.close()
