"""Goodput under overload: does shedding load cost less than serving it? (issue 25, item 5)

One `frugal serve` (or two: ``--baseline DIR`` also serves an older checkout, for a before/after in the
same run), forced to the search tier (the real tantivy demo index; small and large are echo backends and
never asked). Closed-loop clients on raw keep-alive sockets (a few µs of client CPU per request, so the
two cores go to the server) send ``frugal-search`` requests for ``--seconds`` per step:

- ``sustainable``: as many clients as the search tier's slots (``max_concurrency`` 8), the peak;
- ``8x``: eight times as many, each retrying at once after a 429 (the worst case: refusals as fast as
  the server can make them);
- ``8x-retry-after``: the same clients honouring ``Retry-After`` (what a well-behaved SDK does);
- ``40x``: forty times as many, retrying at once: beyond the server-wide cap (``limits.max_in_flight``
  256), so refusals cannot be avoided and their cost shows.

Steps are interleaved over ``--rounds`` rounds; medians are quoted. Goodput is 200s per second; a 429's
cost shows as its latency and as the goodput lost next to the sustainable step. The ledger's 200 rows
are compared with the 200 responses at the end. Writes ``bench/results/overload.json``.

Run: ``.venv/bin/python bench/overload.py [--rounds 3] [--seconds 10] [--baseline /path/to/old/checkout]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from gateway import wait_ready
from rawclient import post_request, read_reply
from served import frugal_served

PROMPTS = ["What is Frugal?", "Which tiers does Frugal route between?", "How much energy does a search answer use?",
           "Who decides which tier answers?"]
SLOTS = 8


def config_text(data_dir: Path) -> str:
    """Search is the real tantivy tier with 8 slots and the default queue; small and large are never used."""
    return (f"data_dir: {data_dir}\n"
            "search: {backend: tantivy, max_concurrency: 8}\n"
            "small: {backend: echo}\nlarge: {backend: echo}\n")


def request_bytes(prompt: str, port: int) -> bytes:
    """One keep-alive HTTP/1.1 chat request, encoded once."""
    body = {"model": "frugal-search", "messages": [{"role": "user", "content": prompt}]}
    return post_request("/v1/chat/completions", body, port)


async def client(port: int, deadline: float, honour_retry_after: bool, out: dict[str, Any], index: int) -> None:
    """One closed-loop client: send, wait for the answer, repeat until the deadline."""
    payloads = [request_bytes(p, port) for p in PROMPTS]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = 0
    try:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            writer.write(payloads[(index + sent) % len(payloads)])
            sent += 1
            reply = await read_reply(reader)
            status, headers = reply.status, reply.headers
            elapsed = (time.perf_counter() - started) * 1000
            out["statuses"][status] = out["statuses"].get(status, 0) + 1
            out["latency_ms"].setdefault(status, []).append(elapsed)
            if headers.get("connection", "").lower() == "close":
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            if status == 429 and honour_retry_after:
                wait = float(headers.get("retry-after", "1"))
                await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))
    finally:
        writer.close()


async def step(port: int, clients: int, seconds: float, honour_retry_after: bool) -> dict[str, Any]:
    """Run ``clients`` closed-loop clients for ``seconds``; goodput, counts and latency percentiles."""
    out: dict[str, Any] = {"statuses": {}, "latency_ms": {}}
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(*(client(port, deadline, honour_retry_after, out, i) for i in range(clients)))
    wall = time.monotonic() - started
    result: dict[str, Any] = {"clients": clients, "seconds": round(wall, 2),
                              "statuses": {str(k): v for k, v in sorted(out["statuses"].items())},
                              "goodput_rps": round(out["statuses"].get(200, 0) / wall, 1)}
    for status, values in out["latency_ms"].items():
        ordered = sorted(values)
        result[f"p50_ms_{status}"] = round(statistics.median(ordered), 2)
        result[f"p99_ms_{status}"] = round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2)
    return result


def ledger_ok_rows(data_dir: Path) -> int:
    """Rows with status 200 in a server's SQLite ledger."""
    with sqlite3.connect(f"file:{data_dir / 'ledger.sqlite3'}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM requests WHERE status = 200").fetchone()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--baseline", type=Path, help="an older checkout served side by side (its code on PYTHONPATH)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "overload.json")
    args = parser.parse_args()

    steps = [("sustainable", SLOTS, False), ("8x", 8 * SLOTS, False), ("8x-retry-after", 8 * SLOTS, True),
             ("40x", 40 * SLOTS, False)]
    servers: dict[str, tuple[str, Path]] = {}
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        codes = {"current": ROOT, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
        for name, code in codes.items():
            data_dir = Path(tmp) / name
            config = Path(tmp) / f"{name}.yaml"
            config.write_text(config_text(data_dir))
            env = {**os.environ, "PYTHONPATH": str(code)}
            url = stack.enter_context(frugal_served(config, lambda u, _p: wait_ready(u + "/healthz"), env))
            servers[name] = (url, data_dir)
            results[name] = {label: [] for label, _, _ in steps}
        for round_ in range(args.rounds):
            for label, clients, honour in steps:
                for name, (url, _data) in servers.items():
                    port = int(url.rsplit(":", 1)[1])
                    outcome = asyncio.run(step(port, clients, args.seconds, honour))
                    results[name][label].append(outcome)
                    print(f"round {round_ + 1} {name:8s} {label:15s} goodput {outcome['goodput_rps']:7.1f}/s "
                          f"{outcome['statuses']}", flush=True)
        time.sleep(2)  # the last group commit
        answered = {name: sum(r["statuses"].get("200", 0) for runs in results[name].values() for r in runs)
                    for name in servers}
        rows = {name: ledger_ok_rows(data) for name, (_url, data) in servers.items()}

    summary: dict[str, Any] = {}
    for name, by_step in results.items():
        medians = {label: statistics.median(r["goodput_rps"] for r in runs) for label, runs in by_step.items()}
        peak = medians["sustainable"]
        summary[name] = {
            "goodput_rps_median": medians,
            "goodput_vs_sustainable": {label: round(v / peak, 3) for label, v in medians.items()},
            "p50_ms_429_median": {label: statistics.median(r["p50_ms_429"] for r in runs if "p50_ms_429" in r)
                                  for label, runs in by_step.items() if any("p50_ms_429" in r for r in runs)},
            "share_429": {label: round(statistics.median(r["statuses"].get("429", 0) / max(1, sum(r["statuses"].values()))
                                                         for r in runs), 3) for label, runs in by_step.items()},
            "ledger_200_rows": rows[name], "answered_200": answered[name],
        }
    payload = {"machine": f"{os.cpu_count()} CPUs", "rounds": args.rounds, "seconds_per_step": args.seconds,
               "steps": {label: {"clients": c, "honour_retry_after": h} for label, c, h in steps},
               "summary": summary, "runs": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
