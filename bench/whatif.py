"""Benchmark the what-if replay (``frugal whatif`` / ``POST /admin/whatif``) over 1,000,000 ledger rows.

Rows are bench/ledger.py's synthetic rows, re-routed consistently with random classifier scores: the first
tier follows the default thresholds (0.15 / 0.5), 10 % of search/small requests escalate one tier, 1 % of
large-first ones are degraded to small, 2 % are forced (no scores), 1 % failed. ``--base-rows`` rows are
written through ``Ledger.record_many``; bench/ledger.py's ``fill`` copies them in SQL up to ``--rows``.
Each timing is the whole ``run_whatif`` call (validation, the one-scan query, the prediction), median of
``--repeats``, over the whole ledger, a 30-day window and everything but the first 14 days (``since``/``until``
go through the created_at index).

    .venv/bin/python bench/whatif.py [--rows 1000000] [--postgres-url URL] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import ledger as ledger_bench  # bench/ledger.py: its synthetic rows, SQL fill and timer
from sqlalchemy import create_engine, text

from router.admin.whatif import run_whatif
from router.ledger.row import LedgerRow
from router.ledger.store import Ledger

CURRENT = {"route.large": 0.15, "route.search": 0.5}
PROPOSED = {"route.large": 0.3, "route.search": 0.6}
ENERGY_WH = {"search": 2e-6, "small": 3e-3, "large": 0.02}
NEXT = {"search": "small", "small": "large"}


def whatif_row(rng: random.Random, i: int) -> LedgerRow:
    """bench/ledger.py's row with scores, a first tier that follows them, escalations and degraded answers."""
    row = ledger_bench.synthetic_row(rng, i)
    if rng.random() < 0.02:
        tier = rng.choice(("search", "small", "large"))
        return replace(row, forced=True, requested_model=f"frugal-{tier}", route=tier, first_tier=tier,
                       score_search=None, score_small=None, score_large=None, attempts=[{"tier": tier}])
    search, large = rng.random(), rng.random() ** 2  # most requests have a low P(large)
    first = "large" if large >= CURRENT["route.large"] else "search" if search >= CURRENT["route.search"] else "small"
    route, flags, escalations, degraded = first, list(row.flags), 0, False
    if first != "large" and rng.random() < 0.1:
        route, escalations = NEXT[first], 1
    elif first == "large" and rng.random() < 0.01:
        route, escalations, degraded = "small", 1, True
        flags.append("degraded:large-unavailable")
    energy = ENERGY_WH[route] * rng.uniform(0.5, 2.0)
    unreturned = ENERGY_WH[first] if escalations and not degraded else 0.0
    return replace(row, score_search=search, score_small=max(0.0, 1.0 - search - large), score_large=large,
                   first_tier=first, route=None if row.status >= 400 else route, escalations=escalations,
                   flags=flags, attempts=[{"tier": first}] + ([{"tier": route}] if escalations else []),
                   energy_wh=energy + unreturned, energy_wh_min=(energy + unreturned) / 2,
                   energy_wh_max=(energy + unreturned) * 2.5, escalation_energy_wh=unreturned)


def fill(ledger: Ledger, rows: int, base: int, rng: random.Random, batch: int = 20_000) -> dict[str, float]:
    """``base`` rows of ``whatif_row``, then bench/ledger.py's ``fill`` copies them up to ``rows``."""
    start = time.perf_counter()
    for offset in range(0, base, batch):
        ledger.record_many([whatif_row(rng, offset + i) for i in range(min(batch, base - offset))])
    written = time.perf_counter() - start
    return {**ledger_bench.fill(ledger, rows, base, rng), "record_many_s": written}  # its own found them written


def timings(ledger: Ledger, repeats: int) -> dict[str, object]:
    """Median and minimum seconds of ``run_whatif`` over everything, a 30-day window and all but the first 14 days."""
    start = ledger_bench.START
    periods = {"full_period": (None, None),
               "thirty_day_window": (start + timedelta(days=120, minutes=17), start + timedelta(days=150, minutes=17)),
               "since_day_15": (start + timedelta(days=14), None)}  # most of the table through the created_at index
    out: dict[str, object] = {
        name: ledger_bench.timed(lambda low=low, high=high: run_whatif(
            ledger, CURRENT, PROPOSED, since=low, until=high)["replayed"], repeats)
        for name, (low, high) in periods.items()}
    same = run_whatif(ledger, CURRENT, CURRENT)  # replaying the thresholds the rows were routed with moves nothing
    assert same["moved_requests"] == 0 and same["proposed"] == same["current"], same["moved"]
    result = run_whatif(ledger, CURRENT, PROPOSED)
    keep = ("replayed", "excluded", "moved_requests", "under_routing")
    summary = {key: result[key] for key in keep}
    summary["energy_wh"] = {"current": result["current"]["energy_wh"], "proposed": result["proposed"]["energy_wh"]}
    return {**out, "replay": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in each database")
    parser.add_argument("--base-rows", type=int, default=100_000, help="rows generated before copying in SQL")
    parser.add_argument("--repeats", type=int, default=3, help="timings per database (the median is reported)")
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                        help="PostgreSQL server ('' to skip)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "whatif.json")
    args = parser.parse_args()
    result: dict[str, object] = {"command": " ".join(["bench/whatif.py", *sys.argv[1:]]),
                                 "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                                 "python": platform.python_version(), "rows": args.rows,
                                 "current": CURRENT, "proposed": PROPOSED}

    with tempfile.TemporaryDirectory(prefix="frugal-bench-") as tmp:
        ledger = Ledger.open(f"sqlite:///{Path(tmp) / 'ledger.sqlite3'}")
        result["sqlite_fill"] = fill(ledger, args.rows, args.base_rows, random.Random(7))
        result["sqlite"] = timings(ledger, args.repeats)
        print("sqlite", json.dumps(result["sqlite"]), flush=True)
        ledger.close()

    if args.postgres_url:
        schema = f"frugal_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(args.postgres_url)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            ledger = Ledger.open(f"{args.postgres_url}?options=-csearch_path%3D{schema}")
            result["postgres_fill"] = fill(ledger, args.rows, args.base_rows, random.Random(7))
            with ledger.engine.begin() as conn:
                conn.execute(text("ANALYZE requests"))
            result["postgres"] = timings(ledger, args.repeats)
            print("postgres", json.dumps(result["postgres"]), flush=True)
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
