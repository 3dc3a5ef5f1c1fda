"""Frugal's own work per request, without sockets: the ASGI app called in process, one request at a time.

The side-by-side benchmark (``bench/sidebyside.py``) measures what a client sees, but on a shared 2-core
machine its sequential figures move by ±30 % between runs. This one takes the network out: it builds the
app from a config like sidebyside's (search: the demo index; small: echo; large: a fake OpenAI-compatible
upstream it starts), calls it directly with a prepared request ``--requests`` times per batch and reports,
per batch, wall time, process CPU time (the event loop plus the ledger's writer thread) and the event
loop's own CPU time per request; medians over ``--batches``. ``--code DIR`` measures another checkout
(its code first on ``sys.path``), so two trees can be compared by alternating runs. ``--profile`` prints
cProfile's top functions instead of writing JSON.

    .venv/bin/python bench/inprocess.py [--model frugal-search] [--code DIR] [--batches 10] [--requests 300]
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = {"frugal-search": "Which port does frugal serve use by default?",
           "frugal-small": "Rewrite this politely: send me the file.",
           "frugal-large": "Write a haiku about the sea."}


def scope_for(body: bytes) -> dict[str, Any]:
    """An ASGI HTTP scope for ``POST /v1/chat/completions`` with ``body``."""
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions", "query_string": b"",
            "root_path": "", "client": ("127.0.0.1", 5555), "server": ("127.0.0.1", 8000),
            "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode())]}


async def measure(app: Any, body: bytes, batches: int, requests: int, profile: bool) -> dict[str, Any]:
    """Per-request wall, process CPU and event-loop CPU (µs), median and minimum over the batches."""
    scope = scope_for(body)

    async def one() -> None:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(dict(scope), receive, send)
        if sent[0]["status"] != 200:
            raise RuntimeError(f"status {sent[0]['status']}: {sent[-1].get('body', b'')[:300]!r}")

    async with app.router.lifespan_context(app):
        await asyncio.sleep(3)  # warm-up of the tiers and their health probes
        for _ in range(200):
            await one()
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        walls, cpus, loops = [], [], []
        for _ in range(batches):
            wall, cpu, loop = time.perf_counter(), time.process_time(), time.thread_time()
            for _ in range(requests):
                await one()
            walls.append((time.perf_counter() - wall) / requests * 1e6)
            cpus.append((time.process_time() - cpu) / requests * 1e6)
            loops.append((time.thread_time() - loop) / requests * 1e6)
        if profiler is not None:
            import pstats

            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
    return {name: {"median_us": round(statistics.median(values)), "min_us": round(min(values))}
            for name, values in (("wall", walls), ("process_cpu", cpus), ("event_loop_cpu", loops))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="frugal-search", choices=sorted(PROMPTS))
    parser.add_argument("--code", type=Path, default=ROOT, help="the Frugal checkout to measure")
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--requests", type=int, default=300, help="requests per batch")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--out", type=Path, help="append the result as one JSON line to this file")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    sys.path.insert(0, str(args.code.resolve()))
    sys.path.insert(1, str(ROOT / "bench"))
    from gateway import free_port, wait_ready

    from router.app import create_app
    from router.commands.serving import prepare_demo_index
    from router.settings import load_settings

    work = Path(tempfile.mkdtemp(prefix="frugal-inprocess-"))
    port = free_port()
    upstream = subprocess.Popen([sys.executable, str(ROOT / "bench/upstream.py"), str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{port}/v1/models")
        config = work / "frugal.yaml"
        config.write_text(f"data_dir: {work / 'data'}\non_large_unavailable: error\nsearch: {{backend: tantivy}}\n"
                          "small: {backend: echo}\nlarge: {backend: litellm, model: openai/bench-large, "
                          f"api_base: 'http://127.0.0.1:{port}/v1', max_concurrency: 64}}\n", encoding="utf-8")
        settings = load_settings(config)
        prepare_demo_index(settings)
        body = json.dumps({"model": args.model, "messages": [{"role": "user", "content": PROMPTS[args.model]}],
                           "max_tokens": 64}).encode()
        figures = asyncio.run(measure(create_app(settings), body, args.batches, args.requests, args.profile))
    finally:
        upstream.terminate()
        upstream.wait(timeout=10)
    result = {"model": args.model, "code": str(args.code), "batches": args.batches, "requests": args.requests,
              **figures}
    print(json.dumps(result))
    if args.out is not None:
        with args.out.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
