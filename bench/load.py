"""Sustained mixed load on one `frugal serve` over loopback: step up to the highest rate that holds, then hold it.

Backends (stated in the results): the search tier is the real tantivy index (the demo index `frugal serve`
builds); the small and large tiers are litellm against ``bench/upstream.py``, an OpenAI-compatible server
on 127.0.0.1 that answers at once (so the figures are the router's capacity, not a model's); routing is
automatic (``frugal-auto``) with the real classifier over a mix of search, small and large prompts.
The ledger is the default SQLite file (WAL, synchronous=FULL).

An open-loop generator sends requests at a fixed rate. A step "holds" when every request gets a 200,
the achieved rate is at least 95 % of the target and p99 latency stays under ``--p99-limit`` seconds.
The highest holding step is then run for ``--duration`` seconds (backing off by a quarter, at most
``--retries`` times, when a minute does not hold what ten seconds did); RSS of the server is sampled
every second, and the ledger's new 200 rows are compared with the 200 responses.

Run: ``.venv/bin/python bench/load.py [--steps 10,20,40,60,80,100] [--step-s 10] [--duration 60]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from gateway import free_port, rss_mb, wait_ready

PROMPTS = [
    ("search", "What is Frugal?"),
    ("search", "Which tiers does Frugal route between?"),
    ("search", "How much energy does a search answer use?"),
    ("small", "Rewrite this politely: send me the report now."),
    ("small", "Translate into French: the meeting is moved to Tuesday."),
    ("small", "Fix the grammar: he go to school every days."),
    ("large", "Write a Python function that merges overlapping intervals and explain its complexity."),
    ("large", "A train leaves at 3pm at 60 km/h and another at 4pm at 90 km/h; when does the second catch up?"),
]


def config_text(upstream: str) -> str:
    """The YAML config of the server under load."""
    return (
        "search: {backend: tantivy}\n"
        f"small: {{backend: litellm, model: openai/bench-small, api_base: '{upstream}', max_concurrency: 64}}\n"
        f"large: {{backend: litellm, model: openai/bench-large, api_base: '{upstream}', max_concurrency: 64}}\n"
    )


def ledger_ok_rows(path: Path) -> int:
    """Rows with status 200 in the SQLite ledger."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM requests WHERE status = 200").fetchone()[0])


async def run_rate(url: str, rate: float, seconds: float, pid: int) -> dict[str, Any]:
    """Send ``rate`` requests per second for ``seconds``; latencies, statuses, RSS samples."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    routes: dict[str, int] = {}
    rss: list[tuple[float, float]] = []
    total = int(rate * seconds)
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        async def one(i: int) -> None:
            _, prompt = PROMPTS[i % len(PROMPTS)]
            body = {"model": "frugal-auto", "max_tokens": 64, "messages": [{"role": "user", "content": prompt}]}
            started = time.perf_counter()
            try:
                response = await client.post("/v1/chat/completions", json=body)
                key = str(response.status_code)
                if response.status_code == 200:
                    route = response.headers.get("x-frugal-route", "?")
                    routes[route] = routes.get(route, 0) + 1
            except httpx.HTTPError as exc:
                key = type(exc).__name__
            latencies.append(time.perf_counter() - started)
            statuses[key] = statuses.get(key, 0) + 1

        async def sample() -> None:
            while True:
                rss.append((round(time.perf_counter() - begin, 1), round(rss_mb(pid)[0], 1)))
                await asyncio.sleep(1.0)

        begin = time.perf_counter()
        sampler = asyncio.create_task(sample())
        tasks = []
        for i in range(total):
            delay = begin + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - begin
        sampler.cancel()
    ordered = sorted(latencies)
    return {
        "target_rps": rate, "seconds": round(elapsed, 2), "requests": total,
        "achieved_rps": round(total / elapsed, 2), "statuses": statuses, "routes": routes,
        "latency_ms": {"p50": round(statistics.median(ordered) * 1000, 1),
                       "p99": round(ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000, 1),
                       "max": round(ordered[-1] * 1000, 1)},
        "rss_mb": rss,
    }


def holds(result: dict[str, Any], p99_limit_s: float) -> bool:
    """No errors, at least 95 % of the target rate, p99 under the limit."""
    ok = result["statuses"].get("200", 0) == result["requests"]
    return ok and result["achieved_rps"] >= 0.95 * result["target_rps"] and result["latency_ms"]["p99"] <= p99_limit_s * 1000


def main() -> None:
    """Step up, hold the best rate, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default="10,20,40,60,80,100")
    parser.add_argument("--step-s", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--p99-limit", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "load.json")
    parser.add_argument("--retries", type=int, default=2, help="back-offs (x0.75) when the sustained run fails")
    parser.add_argument("--drain-s", type=float, default=20.0, help="pause before the sustained run")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="frugal-load-"))
    up_port, port = free_port(), free_port()
    upstream_url = f"http://127.0.0.1:{up_port}/v1"
    (work / "frugal.yaml").write_text(config_text(upstream_url))
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1"}
    upstream = subprocess.Popen([sys.executable, str(ROOT / "bench" / "upstream.py"), str(up_port)], env=env)
    server = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "frugal"), "serve", "--port", str(port), "--data-dir", str(work / "data"),
         "--config", str(work / "frugal.yaml"), "--log-level", "warning"],
        env=env, cwd=ROOT, stdout=open(work / "serve.log", "w"), stderr=subprocess.STDOUT)  # noqa: SIM115
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(upstream_url + "/models")
        wait_ready(url + "/healthz")
        health = httpx.get(url + "/healthz").json()
        asyncio.run(run_rate(url, 5, 2, server.pid))  # warm-up
        steps = []
        for rate in (float(r) for r in args.steps.split(",")):
            result = asyncio.run(run_rate(url, rate, args.step_s, server.pid))
            result["holds"] = holds(result, args.p99_limit)
            steps.append(result)
            print(json.dumps({k: result[k] for k in ("target_rps", "achieved_rps", "statuses", "latency_ms", "holds")}),
                  flush=True)
            if not result["holds"]:
                break
        best = max((s["target_rps"] for s in steps if s["holds"]), default=steps[0]["target_rps"])
        ledger = work / "data" / "ledger.sqlite3"
        attempts = []
        for _ in range(args.retries + 1):  # a 10 s step can hold a rate a minute cannot: back off and retry
            time.sleep(args.drain_s)  # let the backlog of a failed step drain first
            before = ledger_ok_rows(ledger)
            sustained = asyncio.run(run_rate(url, best, args.duration, server.pid))
            time.sleep(1)
            rows = ledger_ok_rows(ledger) - before
            sustained.update(ledger_rows_200=rows, responses_200=sustained["statuses"].get("200", 0))
            attempts.append({k: v for k, v in sustained.items() if k != "rss_mb"})
            print(json.dumps({k: sustained[k] for k in ("target_rps", "achieved_rps", "statuses", "latency_ms")}),
                  flush=True)
            if holds(sustained, args.p99_limit):
                break
            best = round(best * 0.75)
    finally:
        server.terminate()
        upstream.terminate()
        server.wait(timeout=30)
        upstream.wait(timeout=30)
    ok = sustained["statuses"].get("200", 0)
    result = {
        "backends": {"search": "tantivy demo index (real)", "small": "litellm -> bench/upstream.py (instant OpenAI-compatible)",
                     "large": "litellm -> bench/upstream.py (instant OpenAI-compatible)", "ledger": "SQLite WAL synchronous=FULL",
                     "classifier": "shipped classifier, frugal-auto"},
        "health_at_start": {tier: state["detail"] for tier, state in health["tiers"].items()},
        "machine": {"cpus": os.cpu_count(), "client": "httpx.AsyncClient, same machine, open loop"},
        "p99_limit_s": args.p99_limit,
        "steps": [{k: v for k, v in s.items() if k != "rss_mb"} for s in steps],
        "sustained_attempts": attempts,
        "sustained": {**sustained, "ledger_matches": rows == ok, "holds": holds(sustained, args.p99_limit)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    summary = {k: sustained[k] for k in ("target_rps", "achieved_rps", "statuses", "routes", "latency_ms")}
    print(json.dumps({**summary, "ledger_rows_200": rows, "responses_200": ok}, indent=2))


if __name__ == "__main__":
    main()
