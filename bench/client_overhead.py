"""What each way of calling an OpenAI-compatible server costs per request, in one process.

Calls ``bench/upstream.py`` (an instant fixed answer) on 127.0.0.1 with: raw httpx, raw aiohttp (what
Frugal's fast path uses for OpenAI-compatible upstreams), the official ``openai`` SDK, and
``litellm.acompletion`` (what Frugal uses for every other provider): sequential latency, and this
process's CPU time per call with 16 calls in flight. The differences show
how much of the gateway overhead (``bench/gateway.py``) is the client library rather than Frugal.
Writes ``bench/results/client_overhead.json``. Run: ``python bench/client_overhead.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from gateway import free_port, wait_ready

MESSAGES = [{"role": "user", "content": "hello there"}]


async def timed(call: Callable[[], Awaitable[object]], *, requests: int, warmup: int = 20) -> dict[str, float]:
    """p50/p99 in ms of ``requests`` sequential calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        await call()
    latencies = []
    for _ in range(requests):
        started = time.perf_counter()
        await call()
        latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    return {"n": requests, "p50_ms": statistics.median(latencies), "p99_ms": latencies[int(0.99 * (requests - 1))]}


async def run(base: str, requests: int, rounds: int) -> dict[str, dict[str, float]]:
    """Measure each client ``rounds`` times, interleaved; keep the median of the rounds' p50s."""
    import aiohttp
    import httpx
    import litellm
    import openai

    litellm.suppress_debug_info = True
    raw_client = httpx.AsyncClient(limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
    sdk_client = openai.AsyncOpenAI(base_url=base, api_key="bench")

    async def raw() -> object:
        response = await raw_client.post(f"{base}/chat/completions", json={"model": "bench", "messages": MESSAGES})
        return response.json()

    async def aio() -> object:
        async with session.post(f"{base}/chat/completions", json={"model": "bench", "messages": MESSAGES}) as reply:
            return await reply.json()

    async def sdk() -> object:
        return await sdk_client.chat.completions.create(model="bench", messages=MESSAGES)  # type: ignore[arg-type]

    async def lite() -> object:
        return await litellm.acompletion(model="openai/bench", api_base=base, api_key="bench", messages=MESSAGES)

    clients = {"httpx_raw": raw, "aiohttp": aio, "openai_sdk": sdk, "litellm": lite}
    rounds_out: dict[str, list[dict[str, float]]] = {name: [] for name in clients}
    for _ in range(rounds):
        for name, call in clients.items():
            figures = await timed(call, requests=requests)
            figures["cpu_ms_per_request_c16"] = await cpu_per_request(call, requests=requests)
            rounds_out[name].append(figures)
    await raw_client.aclose()
    await session.close()
    return {name: {"p50_ms": statistics.median(r["p50_ms"] for r in runs),
                   "p99_ms": statistics.median(r["p99_ms"] for r in runs),
                   "cpu_ms_per_request_c16": statistics.median(r["cpu_ms_per_request_c16"] for r in runs),
                   "rounds": len(runs), "requests_per_round": requests}
            for name, runs in rounds_out.items()}


async def cpu_per_request(call: Callable[[], Awaitable[object]], *, requests: int, concurrency: int = 16) -> float:
    """This process's CPU time per call (ms) with ``concurrency`` calls in flight: what the client costs a gateway."""
    async def worker() -> None:
        for _ in range(requests // concurrency):
            await call()

    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - started) * 1000 / (requests // concurrency * concurrency)


def main() -> int:
    """Start the upstream, measure, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/client_overhead.json")
    args = parser.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    port = free_port()
    upstream = subprocess.Popen([sys.executable, str(ROOT / "bench/upstream.py"), str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{port}/v1/models")
        results = asyncio.run(run(f"http://127.0.0.1:{port}/v1", args.requests, args.rounds))
    finally:
        upstream.terminate()
        upstream.wait(timeout=30)
    results["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}  # type: ignore[assignment]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
