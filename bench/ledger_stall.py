"""A ledger database that stops answering, under load (issue 25, item 1): what clients see, what the ledger keeps.

A TCP proxy sits between `frugal serve` and the real PostgreSQL on 127.0.0.1:5432 (a fresh schema). Four
closed-loop clients send ``frugal-small`` requests (echo tiers: the figures are the router's) for
``--seconds``; from ``--stall-at`` the proxy is paused for ``--stall-s`` seconds (``kill -STOP`` of a proxy:
connections stay open, nothing answers), then resumed. Per phase (before, during, after the stall):
answers, errors, client timeouts (``--client-timeout``), p50/p99/max latency. At the end: the 200
responses against the rows in PostgreSQL (lost, duplicated) and how long the spool took to drain.
``--baseline DIR`` runs an older checkout the same way, after the current one.
Writes ``bench/results/ledger_stall.json``.

Run: ``.venv/bin/python bench/ledger_stall.py [--seconds 30] [--stall-at 8] [--stall-s 12] [--baseline DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from gateway import wait_ready
from served import frugal_served

from tests.reliability.conftest import proxied_schema

CLIENTS = 4


def config_text(data_dir: Path, ledger_url: str) -> str:
    """Echo tiers, the ledger through the proxy, the default write timeout."""
    return (f"data_dir: {data_dir}\ndemo_index: false\nledger_url: '{ledger_url}'\n"
            "search: {backend: echo}\nsmall: {backend: echo}\nlarge: {backend: echo}\n")


def phase(at: float, stall_at: float, stall_s: float) -> str:
    """Which phase a request that started ``at`` seconds into the run belongs to."""
    return "before" if at < stall_at else "during" if at < stall_at + stall_s else "after"


def run(code: Path, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """One server (its code on PYTHONPATH) through one stall; the figures."""
    samples: list[tuple[float, float, str, str | None]] = []  # (start offset, seconds, outcome, id)
    lock = threading.Lock()
    drain_s: float | None = None
    with proxied_schema("frugal_stall") as (proxy, via_proxy, direct_url):
        schema = via_proxy.rsplit("%3D", 1)[1]
        data_dir = tmp / schema
        config = tmp / f"{schema}.yaml"
        config.write_text(config_text(data_dir, via_proxy))
        env = {**os.environ, "PYTHONPATH": str(code)}
        with frugal_served(config, lambda u, _p: wait_ready(u + "/healthz"), env) as url:
            start = time.monotonic()

            def client(n: int) -> None:
                i = 0
                with httpx.Client(base_url=url, timeout=args.client_timeout) as http:
                    while time.monotonic() - start < args.seconds:
                        began = time.monotonic()
                        body = {"model": "frugal-small", "messages": [{"role": "user", "content": f"c{n} r{i}"}]}
                        try:
                            response = http.post("/v1/chat/completions", json=body)
                            outcome = str(response.status_code)
                            rid = response.json().get("id") if response.status_code == 200 else None
                        except httpx.TimeoutException:
                            outcome, rid = "timeout", None
                        with lock:
                            samples.append((began - start, time.monotonic() - began, outcome, rid))
                        i += 1

            threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
            for thread in threads:
                thread.start()
            time.sleep(args.stall_at)
            proxy.pause()
            time.sleep(args.stall_s)
            proxy.resume()
            resumed = time.monotonic()
            for thread in threads:
                thread.join()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if not httpx.get(url + "/healthz", timeout=5).json()["ledger"].get("spooling"):
                        drain_s = round(time.monotonic() - resumed, 1)
                        break
                except (httpx.HTTPError, ValueError):
                    pass
                time.sleep(0.5)
        time.sleep(1)
        direct = create_engine(direct_url)
        with direct.connect() as conn:
            ids = [row[0] for row in conn.execute(text("SELECT request_id FROM requests"))]
        direct.dispose()
    answered = {rid for _, _, outcome, rid in samples if outcome == "200" and rid}
    phases: dict[str, Any] = {}
    for name in ("before", "during", "after"):
        chosen = [(s, o) for at, s, o, _ in samples if phase(at, args.stall_at, args.stall_s) == name]
        seconds = sorted(s for s, _ in chosen)
        outcomes: dict[str, int] = {}
        for _, outcome in chosen:
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        phases[name] = {"requests": len(chosen), "outcomes": outcomes}
        if seconds:
            phases[name].update({"p50_s": round(statistics.median(seconds), 3),
                                 "p99_s": round(seconds[min(len(seconds) - 1, int(0.99 * len(seconds)))], 3),
                                 "max_s": round(seconds[-1], 3)})
    return {"phases": phases, "answered_200": len(answered), "rows_of_answered": len(answered & set(ids)),
            "lost": len(answered - set(ids)), "duplicate_rows": len(ids) - len(set(ids)),
            "spool_drained_s_after_resume": drain_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--stall-at", type=float, default=8.0)
    parser.add_argument("--stall-s", type=float, default=12.0)
    parser.add_argument("--client-timeout", type=float, default=15.0)
    parser.add_argument("--baseline", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ledger_stall.json")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, code in {"current": ROOT, **({"baseline": args.baseline.resolve()} if args.baseline else {})}.items():
            results[name] = run(code, args, Path(tmp))
            print(name, json.dumps(results[name], indent=2), flush=True)
    payload = {"clients": CLIENTS, "seconds": args.seconds, "stall_at_s": args.stall_at, "stall_s": args.stall_s,
               "client_timeout_s": args.client_timeout, "write_timeout_s": 2.0, "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
