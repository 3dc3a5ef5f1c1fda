"""Gateway overhead: what Frugal adds over calling the same backend directly, and its memory.

Starts ``bench/upstream.py`` (an instant OpenAI-compatible server) and ``frugal serve`` whose large tier
points at it through litellm, then sends the same request (a) straight to the upstream, (b) through
Frugal forced to the large tier (``frugal-large``: HTTP + validation + litellm + energy + ledger), and
(c) through Frugal with automatic routing to the large tier (adds the classifier), and (d) through a
Frugal whose large tier is the in-process echo backend: the floor of the pipeline itself (HTTP,
validation, energy estimate, ledger write) with no upstream call and no litellm, and (e) through a
plain forwarding proxy (``bench/upstream.py PORT URL``): the cost of any extra HTTP hop on this
machine, the floor for any router in front of the upstream. Reports p50/p99
latency at concurrency 1 and 16, the overhead (b - a, c - a) and peak RSS idle and under load.

Each case runs ``--repeats`` times, interleaved; the figures are the medians of the runs' p50/p99.

Run: ``.venv/bin/python bench/gateway.py [--requests 300] [--repeats 3] [--out bench/results/gateway.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
LARGE_PROMPT = ("Write a Python function that merges overlapping intervals, explain its complexity, "
                "and add unit tests for the edge cases.")


def free_port() -> int:
    """An unused port on 127.0.0.1."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, timeout: float = 180.0) -> None:
    """Poll ``url`` until it answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not become ready")


def rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of a process in MB, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def measure(url: str, model: str, *, requests: int, concurrency: int) -> list[float]:
    """Latencies (ms) of ``requests`` chat completions sent ``concurrency`` at a time."""
    body = {"model": model, "messages": [{"role": "user", "content": LARGE_PROMPT}], "max_tokens": 64}
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(requests):
        queue.put_nowait(index)

    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=concurrency)) as client:
        async def worker() -> None:
            while not queue.empty():
                queue.get_nowait()
                start = time.perf_counter()
                response = await client.post(url, json=body)
                latencies.append((time.perf_counter() - start) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")

        for _ in range(3):  # warm-up
            await client.post(url, json=body)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def summary(latencies: list[float]) -> dict[str, float]:
    """p50/p99/mean of latencies in ms."""
    ordered = sorted(latencies)
    return {"n": len(ordered), "p50_ms": statistics.median(ordered),
            "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], "mean_ms": statistics.fmean(ordered)}


def main() -> int:
    """Run the benchmark and write its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3, help="runs per case; figures are their medians")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/gateway.json")
    args = parser.parse_args()

    up_port, frugal_port = free_port(), free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    with tempfile.TemporaryDirectory() as data_dir:
        config = Path(data_dir) / "bench.yaml"
        config.write_text(
            f"data_dir: {data_dir}\ndemo_index: false\non_large_unavailable: error\n"
            "search:\n  backend: echo\n  enabled: false\nsmall:\n  backend: echo\n  enabled: false\n"
            f"large:\n  backend: litellm\n  model: openai/bench-upstream\n  api_base: http://127.0.0.1:{up_port}/v1\n"
            "  max_concurrency: 64\n",
            encoding="utf-8",
        )
        echo_config = Path(data_dir) / "echo.yaml"
        echo_config.write_text(
            f"data_dir: {data_dir}/echo\ndemo_index: false\n"
            "search:\n  backend: echo\n  enabled: false\nsmall:\n  backend: echo\n  enabled: false\n"
            "large:\n  backend: echo\n  max_concurrency: 64\n",
            encoding="utf-8",
        )
        echo_port, proxy_port = free_port(), free_port()
        proxy = subprocess.Popen([sys.executable, str(ROOT / "bench/upstream.py"), str(proxy_port),
                                  f"http://127.0.0.1:{up_port}/v1"], env=env)
        upstream = subprocess.Popen([sys.executable, str(ROOT / "bench/upstream.py"), str(up_port)], env=env)
        frugal = subprocess.Popen([str(Path(sys.executable).parent / "frugal"), "serve", "--config", str(config),
                                   "--port", str(frugal_port), "--log-level", "warning"], env={**env, "OPENAI_API_KEY": "x"},
                                  cwd=ROOT)
        echo = subprocess.Popen([str(Path(sys.executable).parent / "frugal"), "serve", "--config", str(echo_config),
                                 "--port", str(echo_port), "--log-level", "warning"], env=env, cwd=ROOT)
        try:
            wait_ready(f"http://127.0.0.1:{echo_port}/v1/models")
            wait_ready(f"http://127.0.0.1:{proxy_port}/v1/models")
            wait_ready(f"http://127.0.0.1:{up_port}/v1/models")
            wait_ready(f"http://127.0.0.1:{frugal_port}/healthz".replace("/healthz", "/v1/models"))
            time.sleep(1.0)
            idle_rss, _ = rss_mb(frugal.pid)
            results: dict[str, object] = {"requests_per_case": args.requests, "repeats": args.repeats,
                                          "idle_rss_mb": idle_rss}
            direct_url = f"http://127.0.0.1:{up_port}/v1/chat/completions"
            frugal_url = f"http://127.0.0.1:{frugal_port}/v1/chat/completions"
            cases = {
                "direct": (direct_url, "bench-upstream"),
                "plain_proxy_hop": (f"http://127.0.0.1:{proxy_port}/v1/chat/completions", "bench-upstream"),
                "frugal_forced_large": (frugal_url, "frugal-large"),
                "frugal_auto": (frugal_url, "frugal-auto"),
                "frugal_echo_backend": (f"http://127.0.0.1:{echo_port}/v1/chat/completions", "frugal-large"),
            }
            for concurrency in (1, 16):
                runs: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
                for _ in range(args.repeats):  # interleaved, so each case sees the same machine noise
                    for name, (url, model) in cases.items():
                        runs[name].append(summary(asyncio.run(measure(url, model, requests=args.requests,
                                                                      concurrency=concurrency))))
                med = {name: {key: statistics.median(run[key] for run in case_runs) for key in case_runs[0]}
                       for name, case_runs in runs.items()}
                block: dict[str, object] = dict(med)
                for name in ("plain_proxy_hop", "frugal_forced_large", "frugal_auto", "frugal_echo_backend"):
                    block[f"overhead_{name}_p50_ms"] = med[name]["p50_ms"] - med["direct"]["p50_ms"]
                    block[f"overhead_{name}_p99_ms"] = med[name]["p99_ms"] - med["direct"]["p99_ms"]
                block["runs"] = runs
                results[f"c{concurrency}"] = block
            current, peak = rss_mb(frugal.pid)
            results["loaded_rss_mb"] = current
            results["peak_rss_mb"] = peak
        finally:
            for process in (frugal, echo, proxy, upstream):
                process.terminate()
                process.wait(timeout=30)
    results["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
