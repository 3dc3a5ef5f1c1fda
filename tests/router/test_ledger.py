"""The ledger against a real SQLite file: round trips, periods, WAL, migrations and failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from router.core.errors import LedgerUnavailableError
from router.ledger.migrations import MIGRATIONS, applied, migrate
from router.ledger.row import LedgerRow
from router.ledger.store import Ledger

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def sample_row(i: int, created_at: datetime = T0, **overrides: object) -> LedgerRow:
    """A fully populated row (text fields included) for round-trip checks."""
    row = LedgerRow(
        request_id=f"req-{i}", created_at=created_at, requested_model="frugal-auto", route="small", forced=False,
        status=200, client_key_id="key-1", escalations=1,
        attempts=[{"tier": "search", "sufficient": False, "confidence": 0.2, "latency_ms": 3.0, "energy_wh": 1e-6},
                  {"tier": "small", "sufficient": True, "confidence": 0.9, "latency_ms": 400.0, "energy_wh": 2e-3}],
        score_search=0.1, score_small=0.7, score_large=0.2, decision_ms=1.5, latency_ms=410.0, prompt_tokens=30,
        completion_tokens=40, energy_wh=0.002, energy_wh_min=0.001, energy_wh_max=0.005, co2e_g=0.0009,
        cost_usd=0.0, cf_energy_wh=0.02, cf_energy_wh_min=0.018, cf_energy_wh_max=0.024, cf_co2e_g=0.008,
        cf_cost_usd=0.0002, flags=["long_prompt"], co2e_g_min=0.0004, co2e_g_max=0.002, cf_co2e_g_min=0.007, cf_co2e_g_max=0.009,
    )
    for name, value in overrides.items():
        setattr(row, name, value)
    return row


@pytest.fixture
def ledger(tmp_path: Path):
    store = Ledger.open(f"sqlite:///{tmp_path / 'sub' / 'ledger.sqlite3'}")
    yield store
    store.close()


def test_round_trip_keeps_every_field(ledger: Ledger) -> None:
    row = sample_row(1, prompt_text="hello", answer_text="hi")
    ledger.record(row)
    (back,) = list(ledger.rows())
    assert back == row
    assert back.created_at.tzinfo is not None


def test_missing_co2e_bounds_default_to_the_central_value(ledger: Ledger) -> None:
    ledger.record(sample_row(1, co2e_g_min=None, co2e_g_max=None, cf_co2e_g_min=None, cf_co2e_g_max=None))
    (back,) = ledger.recent(1)
    assert back.co2e_g_min == back.co2e_g_max == 0.0009
    assert back.cf_co2e_g_min == back.cf_co2e_g_max == 0.008


def test_period_bounds_are_half_open_and_timezone_aware(ledger: Ledger) -> None:
    for hour in range(5):
        ledger.record(sample_row(hour, T0 + timedelta(hours=hour)))
    got = [r.request_id for r in ledger.rows(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3))]
    assert got == ["req-1", "req-2"]
    paris = timezone(timedelta(hours=1))
    got = [r.request_id for r in ledger.rows(since=datetime(2026, 3, 1, 16, 0, tzinfo=paris))]
    assert got == ["req-3", "req-4"]  # 16:00 in UTC+1 is 15:00 UTC


def test_recent_is_newest_first_and_limited(ledger: Ledger) -> None:
    for i in range(5):
        ledger.record(sample_row(i, T0 + timedelta(minutes=i)))
    assert [r.request_id for r in ledger.recent(3)] == ["req-4", "req-3", "req-2"]
    assert ledger.recent(0) == []


def test_sqlite_runs_in_wal_mode(ledger: Ledger) -> None:
    with ledger.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_migrations_are_recorded_and_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.sqlite3'}"
    first = Ledger.open(url)
    first.record(sample_row(1))
    first.close()
    second = Ledger.open(url)
    assert applied(second.engine) == [name for name, _ in MIGRATIONS]
    assert len(second.recent(10)) == 1
    assert migrate(second.engine) == []
    second.close()


def test_migrated_table_matches_the_schema_the_code_uses(ledger: Ledger) -> None:
    columns = {c["name"] for c in inspect(ledger.engine).get_columns("requests")}
    assert columns == set(ledger.requests.c.keys())


def test_appended_migrations_run_once_in_order(ledger: Ledger) -> None:
    calls: list[str] = []

    def add_thresholds(conn) -> None:
        calls.append("t")
        conn.execute(text("CREATE TABLE thresholds (tier VARCHAR(16) PRIMARY KEY, value FLOAT NOT NULL)"))

    extended = [*MIGRATIONS, ("0002_thresholds", add_thresholds)]
    assert migrate(ledger.engine, extended) == ["0002_thresholds"]
    assert migrate(ledger.engine, extended) == []
    assert calls == ["t"]
    assert "thresholds" in inspect(ledger.engine).get_table_names()
    with pytest.raises(ValueError, match="duplicate"):
        migrate(ledger.engine, [*MIGRATIONS, MIGRATIONS[0]])


def test_record_failure_raises_ledger_unavailable(ledger: Ledger) -> None:
    with ledger.engine.begin() as conn:
        conn.execute(text("DROP TABLE requests"))
    with pytest.raises(LedgerUnavailableError) as info:
        ledger.record(sample_row(1))
    assert info.value.status_code == 503
    with pytest.raises(LedgerUnavailableError):
        ledger.recent(1)


def test_a_row_and_its_rollup_are_one_transaction(ledger: Ledger) -> None:
    ledger.record(sample_row(1))
    with ledger.engine.begin() as conn:  # the rollup upsert, the second statement of a write, now fails
        conn.execute(text("ALTER TABLE request_rollup RENAME TO request_rollup_gone"))
    with pytest.raises(LedgerUnavailableError):
        ledger.record(sample_row(2))
    with ledger.engine.begin() as conn:
        conn.execute(text("ALTER TABLE request_rollup_gone RENAME TO request_rollup"))
    assert [r.request_id for r in ledger.rows()] == ["req-1"]  # the failed write's INSERT was rolled back
    ledger.record(sample_row(3))
    assert [r.request_id for r in ledger.rows()] == ["req-1", "req-3"]


def test_bad_urls_and_unreachable_databases_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(LedgerUnavailableError, match="unsupported"):
        Ledger.open("mysql://localhost/x")
    with pytest.raises(LedgerUnavailableError, match="invalid ledger URL"):
        Ledger.open("not a url")
    with pytest.raises(LedgerUnavailableError, match="cannot open"):
        Ledger.open("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_concurrent_writers_keep_rows_and_rollup_consistent(ledger: Ledger) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def write(worker: int) -> None:
        for i in range(40):
            ledger.record(sample_row(worker * 1000 + i, T0 + timedelta(minutes=i % 3)))

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(write, range(6)))
    with ledger.engine.connect() as conn:
        rolled = conn.execute(text("SELECT SUM(requests), SUM(escalations) FROM request_rollup")).one()
    assert len(list(ledger.rows())) == 240
    assert tuple(rolled) == (240, 240)
