"""Benchmark the ledger: write cost per request (SQLite, PostgreSQL) and report time over 1,000,000 rows.

Rows are synthetic (random routes over a year, realistic energy magnitudes); no dataset is needed.
Write cost is measured the way the router writes: one ``Ledger.record`` transaction per request
(row plus hourly-rollup upsert). To stay within a few minutes, ``--base-rows`` rows are generated in
Python and the rest are SQL copies of them (see ``fill``).

    .venv/bin/python bench/ledger.py [--rows 1000000] [--writes 2000] [--postgres-url URL] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collections.abc import Callable

from sqlalchemy import create_engine, func, insert, literal, select, text

from router.ledger.row import LedgerRow
from router.ledger.store import Ledger
from router.report import build_report

ROUTES = ("search", "small", "large")
WEIGHTS = (0.40, 0.35, 0.25)
START = datetime(2026, 1, 1, tzinfo=UTC)


CLIENTS = tuple(f"team-{i}" for i in range(10))
CLIENT_WEIGHTS = (30, 20, 15, 10, 8, 6, 5, 3, 2, 1)  # a few big clients, a long tail (shares in %)


def synthetic_row(rng: random.Random, i: int) -> LedgerRow:
    """One plausible request row."""
    route = rng.choices(ROUTES, WEIGHTS)[0]
    energy = {"search": 2e-6, "small": 3e-3, "large": 0.02}[route] * rng.uniform(0.5, 2.0)
    cf = 0.02 * rng.uniform(0.8, 1.2)
    return LedgerRow(
        request_id=f"bench-{i}", created_at=START + timedelta(seconds=rng.uniform(0, 365 * 86400)),
        requested_model="frugal-auto", route=route, forced=False, status=200 if rng.random() > 0.01 else 503,
        client_key_id=rng.choices(CLIENTS, CLIENT_WEIGHTS)[0],
        escalations=1 if rng.random() < 0.1 else 0, attempts=[{"tier": route, "sufficient": True}],
        score_search=0.3, score_small=0.3, score_large=0.4, decision_ms=1.2, latency_ms=300.0, prompt_tokens=40,
        completion_tokens=120, energy_wh=energy, energy_wh_min=energy / 2, energy_wh_max=energy * 2.5,
        co2e_g=energy * 0.45, cost_usd=0.0001 if route == "large" else 0.0, cf_energy_wh=cf,
        cf_energy_wh_min=cf * 0.9, cf_energy_wh_max=cf * 1.1, cf_co2e_g=cf * 0.38, cf_cost_usd=0.0001,
        flags=["long_prompt"] if rng.random() < 0.02 else [],
    )


def write_cost(ledger: Ledger, writes: int, rng: random.Random) -> dict[str, float]:
    """Median and p95 milliseconds of one ``record`` call."""
    rows = [synthetic_row(rng, i) for i in range(writes)]
    times = []
    for row in rows:
        start = time.perf_counter()
        ledger.record(row)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"writes": writes, "median_ms": statistics.median(times), "p95_ms": times[int(len(times) * 0.95) - 1]}


def fill(ledger: Ledger, rows: int, base: int, rng: random.Random, batch: int = 20_000) -> dict[str, float]:
    """Reach ``rows`` rows: ``base`` synthetic rows through ``record_many``, then copies made in SQL.

    Copies keep their timestamps (request ids get a suffix), so the hourly rollup has the shape a year
    of real traffic gives it; the rollup is then rebuilt from the raw rows and checked.
    """
    t = ledger.requests
    with ledger.engine.connect() as conn:
        first = int(conn.execute(select(func.count()).select_from(t)).scalar() or 0)
    start = time.perf_counter()
    base = min(base, rows)
    for offset in range(first, base, batch):
        ledger.record_many([synthetic_row(rng, offset + i) for i in range(min(batch, base - offset))])
    inserted = time.perf_counter() - start
    copy_columns = [c for c in t.c if c.name != "id"]
    total = base
    copy = 0
    with ledger.engine.begin() as conn:
        while total < rows:
            copy += 1
            take = min(base, rows - total)
            source = select(*[(c + literal(f"-c{copy}")) if c.name == "request_id" else c for c in copy_columns])
            source = source.where(t.c.id <= take)
            conn.execute(insert(t).from_select([c.name for c in copy_columns], source))
            total += take
    copied = time.perf_counter() - start - inserted
    rebuild_start = time.perf_counter()
    ledger.rebuild_rollup()
    rebuilt = time.perf_counter() - rebuild_start
    with ledger.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t)).scalar() == rows
    return {"record_many_rows": base, "record_many_s": inserted, "sql_copy_s": copied, "rollup_rebuild_s": rebuilt}


def timed(fn: Callable[[], int], repeats: int) -> dict[str, float | int]:
    """Median and minimum seconds of ``fn`` (which returns the request count it covered)."""
    times, requests = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        requests = fn()
        times.append(time.perf_counter() - start)
    return {"requests": requests, "repeats": repeats, "median_s": statistics.median(times), "min_s": min(times)}


def report_times(ledger: Ledger, repeats: int) -> dict[str, object]:
    """Report time over everything, over an unaligned window (raw edge hours), and raw SQL alone."""
    from router.ledger.queries import raw_day_route_totals

    since, until = START + timedelta(days=30, minutes=17, seconds=3), START + timedelta(days=330, minutes=41)
    full = timed(lambda: build_report(ledger)["requests"], repeats)
    window = timed(lambda: build_report(ledger, since=since, until=until)["requests"], repeats)
    raw = timed(lambda: sum(g.requests for g in raw_day_route_totals(ledger.engine, ledger.tables, None, None)), 1)
    assert raw["requests"] == full["requests"], (raw, full)
    largest = timed(lambda: build_report(ledger, client=CLIENTS[0])["requests"], repeats)
    typical = timed(lambda: build_report(ledger, client=CLIENTS[4])["requests"], repeats)
    return {"full_period": full, "unaligned_window": window, "raw_rows_without_rollup": raw,
            "one_client_largest_30pct": largest, "one_client_8pct": typical}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows for the SQLite report timing")
    parser.add_argument("--writes", type=int, default=2000, help="single-row writes timed per database")
    parser.add_argument("--repeats", type=int, default=5, help="report timings per database")
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                        help="PostgreSQL server for the write and report timings ('' to skip)")
    parser.add_argument("--pg-rows", type=int, default=1_000_000, help="rows for the PostgreSQL report timing")
    parser.add_argument("--base-rows", type=int, default=100_000,
                        help="rows generated through Ledger.record_many before copying in SQL")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "ledger.json")
    args = parser.parse_args()
    rng = random.Random(7)
    result: dict[str, object] = {"command": " ".join(["bench/ledger.py", *sys.argv[1:]]),
                                 "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                                 "python": platform.python_version()}

    with tempfile.TemporaryDirectory(prefix="frugal-bench-") as tmp:
        ledger = Ledger.open(f"sqlite:///{Path(tmp) / 'ledger.sqlite3'}")
        result["sqlite_write"] = write_cost(ledger, args.writes, rng)
        print("sqlite write", result["sqlite_write"], flush=True)
        result["sqlite_fill"] = fill(ledger, args.rows, args.base_rows, rng)
        print("sqlite fill", result["sqlite_fill"], flush=True)
        result["sqlite_report"] = report_times(ledger, args.repeats)
        print("sqlite report", result["sqlite_report"], flush=True)
        result["sqlite_file_mb"] = round((Path(tmp) / "ledger.sqlite3").stat().st_size / 1e6, 1)
        ledger.close()

    if args.postgres_url:
        schema = f"frugal_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(args.postgres_url)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            ledger = Ledger.open(f"{args.postgres_url}?options=-csearch_path%3D{schema}")
            result["postgres_write"] = write_cost(ledger, args.writes, rng)
            print("postgres write", result["postgres_write"], flush=True)
            result["postgres_fill"] = fill(ledger, args.pg_rows, args.base_rows, rng)
            result["postgres_report"] = report_times(ledger, args.repeats)
            print("postgres report", result["postgres_report"], flush=True)
            ledger.close()
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
