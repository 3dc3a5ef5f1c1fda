"""How long a threshold change takes to reach a second app sharing the database.

Run: ``.venv/bin/python bench/admin_propagation.py [--poll 2.0] [--changes 6]``. Two apps (echo tiers)
share a SQLite file, then a fresh PostgreSQL schema on 127.0.0.1; each change is a ``PUT`` on one and a
polling ``GET`` on the other, at varied phases against the poll. Writes bench/results/admin_propagation.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.admin.conftest import app_client
from tests.conftest import echo_settings

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def probe(url: str | None, poll: float, changes: int) -> dict[str, Any]:
    """PUT latency and propagation delay for ``changes`` changes between two apps on one database."""
    root = Path(tempfile.mkdtemp())
    extra = {"ledger_url": url} if url else {}
    first = echo_settings(root / "a", thresholds_poll_s=poll, **extra)
    second = echo_settings(root / ("b" if url else "a"), thresholds_poll_s=poll, **extra)
    puts, delays = [], []
    with app_client(first) as writer, app_client(second) as reader:
        for i in range(changes):
            value = round(0.1 + i / 100, 2)
            start = time.perf_counter()
            writer.put("/admin/thresholds", json={"thresholds": {"route.large": value}, "reason": "probe"})
            puts.append((time.perf_counter() - start) * 1000)
            while reader.get("/admin/thresholds").json()["thresholds"]["route.large"]["value"] != value:
                time.sleep(0.01)
            delays.append(time.perf_counter() - start)
            time.sleep(0.37 * (i + 1) % poll)
    return {"poll_s": poll, "changes": changes, "put_ms": {"median": statistics.median(puts), "max": max(puts)},
            "propagation_s": {"median": statistics.median(delays), "max": max(delays)}}


def main() -> None:
    """Probe SQLite and PostgreSQL; write and print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--poll", type=float, default=2.0)
    parser.add_argument("--changes", type=int, default=6)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "admin_propagation.json")
    args = parser.parse_args()
    result = {"sqlite": probe(None, args.poll, args.changes)}
    schema = f"frugal_probe_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        result["postgresql"] = probe(f"{PG_URL}?options=-csearch_path%3D{schema}", args.poll, args.changes)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
