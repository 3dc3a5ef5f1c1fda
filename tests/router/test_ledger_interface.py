"""The ledger interface: both implementations answer all of it, only the ledger writes SQL, energy columns come from one list."""

from __future__ import annotations

import inspect
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect as sql_inspect
from test_ledger import T0, sample_row

from router.core.estimate import Estimate, Range
from router.ledger.interface import LedgerStore
from router.ledger.row import ENERGY_COLUMNS, RANGE_FALLBACKS, LedgerRow
from router.ledger.spool import SpooledLedger
from router.ledger.store import Ledger

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL_METHODS = sorted(name for name, member in vars(LedgerStore).items()
                          if callable(member) and not name.startswith("_"))


@pytest.mark.parametrize("implementation", [Ledger, SpooledLedger])
@pytest.mark.parametrize("method", PROTOCOL_METHODS)
def test_every_implementation_has_every_method_with_the_same_signature(implementation: type, method: str) -> None:
    assert inspect.signature(getattr(implementation, method)) == inspect.signature(getattr(LedgerStore, method))


def test_the_interface_covers_what_the_callers_need() -> None:
    assert {"record", "record_many", "rows", "recent", "day_route_totals", "hourly_route_energy",
            "tier_energy_means", "save_thresholds", "threshold_history", "recent_large_output_tokens",
            "ping", "close"} <= set(PROTOCOL_METHODS)
    assert "__getattr__" not in vars(SpooledLedger)


def test_only_the_ledger_package_writes_sql() -> None:
    users = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "router").rglob("*.py")
                   if "sqlalchemy" in path.read_text(encoding="utf-8"))
    assert [u for u in users if not u.startswith(("router/ledger/", "router/devtools/"))] == []


def test_energy_columns_are_the_rows_float_fields_and_both_tables_columns(tmp_path: Path) -> None:
    types = {f.name: f.type for f in fields(LedgerRow)}
    assert set(ENERGY_COLUMNS) <= set(types) and len(set(ENERGY_COLUMNS)) == len(ENERGY_COLUMNS) == 14
    assert {types[name] for name in ENERGY_COLUMNS} <= {"float", "float | None"}
    assert set(RANGE_FALLBACKS) == {"energy_wh_min", "energy_wh_max", "co2e_g_min", "co2e_g_max", "cf_energy_wh_min",
                                    "cf_energy_wh_max", "cf_co2e_g_min", "cf_co2e_g_max"}
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    try:
        found = sql_inspect(ledger.engine)
        for table in (ledger.requests, ledger.rollup):
            assert {c["name"] for c in found.get_columns(table.name)} == set(table.c.keys())
            assert set(ENERGY_COLUMNS) <= set(table.c.keys())
    finally:
        ledger.close()


def test_apply_estimates_fills_every_energy_column() -> None:
    actual = Estimate(Range(1.0, 0.5, 2.0), Range(3.0, 2.5, 4.0), 0.25, ("long_prompt",))
    counterfactual = Estimate(Range(10.0, 5.0, 20.0), Range(30.0, 25.0, 40.0), 2.5)
    row = LedgerRow("r", T0, "frugal", "small", False, 200, flags=["x"]).apply_estimates(actual, counterfactual)
    assert [getattr(row, name) for name in ENERGY_COLUMNS] == [
        1.0, 0.5, 2.0, 3.0, 2.5, 4.0, 0.25, 10.0, 5.0, 20.0, 30.0, 25.0, 40.0, 2.5]
    assert row.flags == ["x", "long_prompt"]


def test_a_spooled_ledger_answers_reads_and_thresholds_from_the_database(tmp_path: Path) -> None:
    ledger = SpooledLedger(Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}"), tmp_path, retry_s=0.1)
    try:
        assert isinstance(ledger, LedgerStore) and isinstance(ledger.ledger, LedgerStore)
        ledger.record_many([sample_row(i, T0 + timedelta(minutes=10 * i)) for i in range(3)])
        assert ledger.recorded_request_ids(["req-0", "req-2", "req-9"]) == {"req-0", "req-2"}
        (totals,) = ledger.day_route_totals()
        assert totals.requests == 3 and totals.sums["energy_wh"] == pytest.approx(sum(
            sample_row(i).energy_wh for i in range(3)))
        first, last = ledger.first_and_last_times()
        assert first == T0.astimezone(UTC) and last == (T0 + timedelta(minutes=20)).astimezone(UTC)
        assert sum(p.requests for p in ledger.hourly_route_energy(T0 - timedelta(hours=1))) == 3
        assert ledger.degraded_request_count(T0 - timedelta(hours=1)) == 0
        assert ledger.threshold_version() == 0
        change = ledger.save_thresholds({"route.large": 0.4}, actor="test", reason="why", fallback={"route.large": 0.5})
        assert change.version == 1 and change.changes == {"route.large": (0.5, 0.4)}
        assert ledger.persisted_thresholds() == (1, {"route.large": 0.4})
        assert [c.version for c in ledger.threshold_history()] == [1] and ledger.ping()
        assert ledger.first_and_last_times(datetime(2099, 1, 1, tzinfo=UTC)) == (None, None)
    finally:
        ledger.close()
