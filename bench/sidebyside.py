"""Side by side against the same fake upstream: direct, the pass-through floor, Frugal and the LiteLLM proxy (issue 23).

A performance claim is a ratio measured in one run against the floor and against what a user would run
instead (docs/benchmarks/gateway.md). This starts ``bench/upstream.py`` (an instant OpenAI-compatible
server that also streams: a role chunk, four content chunks, finish, usage) and in front of it:

- ``floor``: ``bench/floor.py``, a thirty-line Starlette + httpx pass-through (one extra HTTP hop in Python);
  the aims are judged against it (PEERS.md's floor);
- ``floor_aiohttp``: the same hop with aiohttp as the client (what Frugal's fast path uses): the stricter floor;
- ``frugal``: ``frugal serve`` from this checkout, large tier ``{backend: litellm, model: openai/bench-large}``
  → the upstream (``max_concurrency`` 64), small tier echo, search tier the real tantivy demo index (built in
  its data_dir at start); requests name ``frugal-large``;
- ``frugal_code``: the same server from another checkout, when ``--frugal-code DIR`` is given (its code on
  PYTHONPATH, like ``bench/overload.py --baseline``), to compare two versions of Frugal in one run;
- ``litellm``: the LiteLLM proxy, when ``--litellm`` (default ``/tmp/llproxy/bin/litellm``) is installed in its
  own environment (docs: /work/shared/PEERS.md), in its fastest configuration (no database, no callbacks).

The client is ``bench/rawclient.py`` (raw keep-alive sockets, requests encoded once) in this process. Each
round runs every step for every system in turn (A B C D A B C D …): sequential (one connection,
``--requests`` requests) and ``--concurrency`` connections for ``--seconds``, each non-streaming and streaming.
Then, per Frugal, ``frugal-search`` requests (the real tantivy tier) at the same concurrency. A stream's
first byte is when the first chunk with answer text arrives; its total is when the last chunk does.

Per-round figures: p50/p99, added latency = system − direct in the same round, throughput. The summary
holds the medians of per-round values, and ratios (Frugal ÷ floor, Frugal ÷ LiteLLM, …) as medians of
per-round ratios, checked against issue 23's aims. After the rounds, each Frugal ledger's 200 rows are
compared with the 200 answers it gave. Writes ``bench/results/sidebyside.json`` and prints a summary.

Run: ``.venv/bin/python bench/sidebyside.py [--rounds 5] [--requests 300] [--seconds 5] [--frugal-code DIR]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from gateway import LARGE_PROMPT, free_port, rss_mb, wait_ready
from overload import PROMPTS as SEARCH_PROMPTS
from rawclient import Sample, closed_loop, post_request
from upstream import REPLY

CHAT = "/v1/chat/completions"
#: Issue 23's aims: (figure in the summary, comparison, threshold). Ratios are Frugal's over the named system's.
AIMS = (
    ("added_p50_vs_floor", "<=", 2.0), ("added_p99_vs_floor", "<=", 3.0), ("stream_added_ttfb_vs_floor", "<=", 2.0),
    ("rps_vs_floor", ">=", 0.6), ("rps_vs_litellm", ">=", 3.0), ("errors", "==", 0),
    ("search_rps_vs_today", ">=", 2.0), ("search_p99_ms", "<=", 100.0), ("search_ledger_rows_minus_answers", "==", 0),
)


@dataclass
class System:
    """One server under test: how to reach it and which model to ask for."""

    name: str
    port: int
    model: str
    pid: int
    answered: dict[str, int] = field(default_factory=dict)  # 200 replies per step, warm-up included


@contextmanager
def served(name: str, command: list[str], ready_url: str, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """Run ``command`` until the block ends; yield it once ``ready_url`` answers 200; on a failure print its log."""
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_ready(ready_url)
            yield process
        except Exception:
            log.seek(0)
            print(f"--- {name} log ---\n{log.read()[-3000:]}", file=sys.stderr)
            raise
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def frugal_config(data_dir: Path, upstream_port: int, workers: int = 1) -> str:
    """Large tier: the ``litellm`` backend (its OpenAI-compatible fast path where the checkout has one) to the
    upstream; search: the tantivy demo index; small: echo (never asked); ``workers`` processes when above 1."""
    return (f"data_dir: {data_dir}\non_large_unavailable: error\n" + (f"workers: {workers}\n" if workers > 1 else "") +
            "search: {backend: tantivy}\nsmall: {backend: echo}\n"
            f"large: {{backend: litellm, model: openai/bench-large, api_base: 'http://127.0.0.1:{upstream_port}/v1', "
            "max_concurrency: 64}\n")


def litellm_config(upstream_port: int) -> str:
    """The LiteLLM proxy's minimal config (PEERS.md): one model routed to the upstream."""
    return ("model_list:\n  - model_name: bench-upstream\n"
            f"    litellm_params: {{model: openai/bench-upstream, api_base: 'http://127.0.0.1:{upstream_port}/v1', "
            "api_key: x}\n"
            "general_settings: {dangerously_permit_weak_or_unset_master_key: true}\n"
            "litellm_settings: {set_verbose: false}\n")


def percentile(ordered: list[float], q: float) -> float:
    """The ``q`` quantile of a sorted list (nearest rank below)."""
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def describe(samples: list[Sample], wall: float, cpu: float, *, stream: bool) -> dict[str, Any]:
    """p50/p99 latency (and first answer text for streams), throughput and errors of one step."""
    good = [s for s in samples if s.ok]
    out: dict[str, Any] = {"n": len(samples), "errors": len(samples) - len(good), "seconds": round(wall, 3),
                           "rps": round(len(good) / wall, 1),
                           "client_cpu_us_per_request": round(cpu / max(1, len(samples)) * 1e6, 1)}
    if good:
        total = sorted(s.ms for s in good)
        out |= {"p50_ms": round(statistics.median(total), 3), "p99_ms": round(percentile(total, 0.99), 3)}
        if stream:
            first = sorted(s.first_ms for s in good if s.first_ms is not None)
            out |= {"ttfb_p50_ms": round(statistics.median(first), 3), "ttfb_p99_ms": round(percentile(first, 0.99), 3)}
    return out


async def load(port: int, payloads: list[bytes], *, stream: bool, ok: bytes, clients: int,
               requests: int | None = None, seconds: float | None = None) -> tuple[dict[str, Any], int]:
    """``clients`` closed-loop clients (client i sends ``payloads[i % len]``), for ``requests`` each or ``seconds``."""
    samples: list[Sample] = []
    ready = asyncio.Barrier(clients + 1)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(closed_loop(port, payloads[i % len(payloads)], stream=stream, ok=ok,
                                             samples=samples, stop=stop, requests=requests, ready=ready))
             for i in range(clients)]
    try:
        await asyncio.wait_for(ready.wait(), timeout=120)
    except BaseException:
        for task in tasks:
            task.cancel()
        raise
    started, cpu = time.perf_counter(), time.process_time()
    if seconds is not None:
        await asyncio.sleep(seconds)
        stop.set()
    answered = sum(await asyncio.gather(*tasks))
    return describe(samples, time.perf_counter() - started, time.process_time() - cpu, stream=stream), answered


def chat_payload(port: int, model: str, stream: bool, prompt: str = LARGE_PROMPT) -> bytes:
    """The request every system gets (only the model name differs)."""
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 64}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return post_request(CHAT, body, port)


def ledger_rows(data_dir: Path) -> dict[str, int]:
    """A Frugal's SQLite ledger: rows with status 200, all and ``frugal-search`` ones."""
    with sqlite3.connect(f"file:{data_dir / 'ledger.sqlite3'}?mode=ro", uri=True) as conn:
        total, search = conn.execute("SELECT COUNT(*), COALESCE(SUM(requested_model = 'frugal-search'), 0) "
                                     "FROM requests WHERE status = 200").fetchone()
    return {"all": int(total), "search": int(search)}


def median_of(values: list[float | None]) -> float | None:
    """Median of the values that exist."""
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def ratio(a: float | None, b: float | None) -> float | None:
    """a ÷ b when both exist and b is positive."""
    return a / b if a is not None and b is not None and b > 0 else None


#: Per-round figures whose ratios between systems are reported: (step, figure).
RATIO_FIGURES = (("seq", "added_p50_ms"), ("seq", "added_p99_ms"), ("seq", "p50_ms"),
                 ("seq_stream", "added_ttfb_p50_ms"), ("seq_stream", "ttfb_p50_ms"),
                 ("seq_stream", "added_p50_ms"), ("seq_stream", "p50_ms"),
                 ("concurrent", "rps"), ("concurrent", "p99_ms"), ("concurrent_stream", "rps"),
                 ("concurrent_stream", "ttfb_p50_ms"))


def add_overheads(rounds: list[dict[str, dict[str, dict[str, Any]]]]) -> None:
    """Per round, each system's figures minus direct's (``added_*``), in place."""
    for by_step in rounds:
        for systems in by_step.values():
            direct = systems.get("direct", {})
            for figures in systems.values():
                for key in ("p50_ms", "p99_ms", "ttfb_p50_ms", "ttfb_p99_ms"):
                    if key in figures and key in direct:
                        figures[f"added_{key}"] = round(figures[key] - direct[key], 3)


def summarise(rounds: list[dict[str, dict[str, dict[str, Any]]]], names: list[str]) -> dict[str, Any]:
    """Medians over rounds per system and step; errors summed; ratios as medians of per-round ratios."""
    summary: dict[str, Any] = {}
    for name in names:
        summary[name] = {}
        for step in rounds[0]:
            runs = [r[step][name] for r in rounds if name in r[step]]
            keys = [k for k in runs[0] if k not in ("n", "errors", "seconds")]
            summary[name][step] = {k: median_of([run.get(k) for run in runs]) for k in keys}
            summary[name][step]["errors"] = sum(run["errors"] for run in runs)
            summary[name][step]["requests"] = sum(run["n"] for run in runs)
    ratios: dict[str, dict[str, float | None]] = {}
    pairs = [(a, b) for a in names if a.startswith("frugal") for b in names if b != a and b != "direct"]
    pairs += [("floor", "litellm")] if {"floor", "litellm"} <= set(names) else []
    for a, b in pairs:
        ratios[f"{a}/{b}"] = {f"{step}.{fig}": median_of([ratio(r[step].get(a, {}).get(fig), r[step].get(b, {}).get(fig))
                                                          for r in rounds]) for step, fig in RATIO_FIGURES}
    summary["ratios"] = ratios
    return summary


def check_aims(summary: dict[str, Any], search: dict[str, Any], frugal: str, today_rps: float | None) -> list[dict[str, Any]]:
    """Issue 23's aims for one Frugal system: the figure, the threshold and whether it is met."""
    floor = summary["ratios"].get(f"{frugal}/floor", {})
    lite = summary["ratios"].get(f"{frugal}/litellm", {})
    mine = search.get(frugal, {})
    figures = {
        "added_p50_vs_floor": floor.get("seq.added_p50_ms"), "added_p99_vs_floor": floor.get("seq.added_p99_ms"),
        "stream_added_ttfb_vs_floor": floor.get("seq_stream.added_ttfb_p50_ms"), "rps_vs_floor": floor.get("concurrent.rps"),
        "rps_vs_litellm": lite.get("concurrent.rps"),
        "errors": sum(step["errors"] for step in summary[frugal].values()) + mine.get("errors", 0),
        "search_rps_vs_today": ratio(mine.get("rps"), today_rps), "search_p99_ms": mine.get("p99_ms"),
        "search_ledger_rows_minus_answers": mine.get("ledger_rows_minus_answers"),
    }
    compare = {"<=": lambda x, t: x <= t, ">=": lambda x, t: x >= t, "==": lambda x, t: x == t}
    return [{"aim": aim, "value": None if figures[aim] is None else round(figures[aim], 3), "op": op,
             "threshold": threshold, "met": None if figures[aim] is None else compare[op](figures[aim], threshold)}
            for aim, op, threshold in AIMS]


def git_commit(path: Path) -> str | None:
    """The commit a checkout is at, with ``+dirty`` when Frugal's own code there has uncommitted changes."""
    try:
        head = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no", "--",
                                "router", "backends", "classifiers"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cpu": model, "cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform(),
            "loadavg_start": os.getloadavg()}


def main() -> int:
    """Start the systems, run the interleaved rounds, write the JSON and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=300, help="sequential requests per system, step and round")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each concurrent step")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--frugal-code", type=Path, help="another Frugal checkout, served too (its code on PYTHONPATH)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes of this checkout's Frugal (workers:)")
    parser.add_argument("--litellm", type=Path, default=Path("/tmp/llproxy/bin/litellm"),
                        help="the LiteLLM proxy's executable, in its own environment; skipped when missing")
    parser.add_argument("--search-today-rps", type=float, default=317.0,
                        help="the search tier's throughput before issue 23 (the issue's figure) for its aim")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "sidebyside.json")
    args = parser.parse_args()
    steps = {"seq": (False, 1), "seq_stream": (True, 1), "concurrent": (False, args.concurrency),
             "concurrent_stream": (True, args.concurrency)}  # step: (streaming, clients)

    info = machine()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True", "OPENAI_API_KEY": "x",
           "LITELLM_LOG": "WARNING"}
    frugal_bin = str(Path(sys.executable).parent / "frugal")
    codes = {"frugal": ROOT, **({"frugal_code": args.frugal_code.resolve()} if args.frugal_code else {})}
    systems: dict[str, System] = {}
    skipped: dict[str, str] = {}
    rounds: list[dict[str, dict[str, dict[str, Any]]]] = []
    search_runs: dict[str, list[dict[str, Any]]] = {name: [] for name in codes}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        up = free_port()
        upstream = f"http://127.0.0.1:{up}/v1"
        process = stack.enter_context(served("upstream", [sys.executable, str(ROOT / "bench/upstream.py"), str(up)],
                                             f"{upstream}/models", env))
        systems["direct"] = System("direct", up, "bench-upstream", process.pid)
        port = free_port()
        process = stack.enter_context(served("floor", [sys.executable, str(ROOT / "bench/floor.py"), str(port),
                                                       upstream], f"http://127.0.0.1:{port}/v1/models", env))
        systems["floor"] = System("floor", port, "bench-upstream", process.pid)
        port = free_port()
        process = stack.enter_context(served("floor_aiohttp", [sys.executable, str(ROOT / "bench/floor.py"), str(port),
                                                               upstream, "aiohttp"],
                                             f"http://127.0.0.1:{port}/v1/models", env))
        systems["floor_aiohttp"] = System("floor_aiohttp", port, "bench-upstream", process.pid)
        for name, code in codes.items():
            data_dir = Path(tmp) / name
            config = Path(tmp) / f"{name}.yaml"
            config.write_text(frugal_config(data_dir, up, args.workers if name == "frugal" else 1), encoding="utf-8")
            port = free_port()
            process = stack.enter_context(served(
                name, [frugal_bin, "serve", "--config", str(config), "--port", str(port), "--log-level", "warning"],
                f"http://127.0.0.1:{port}/healthz", {**env, "PYTHONPATH": str(code)}))
            systems[name] = System(name, port, "frugal-large", process.pid)
        if args.litellm.exists():
            config = Path(tmp) / "litellm.yaml"
            config.write_text(litellm_config(up), encoding="utf-8")
            port = free_port()
            process = stack.enter_context(served(
                "litellm", [str(args.litellm), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
                f"http://127.0.0.1:{port}/health/liveliness", env))
            systems["litellm"] = System("litellm", port, "bench-upstream", process.pid)
        else:
            skipped["litellm"] = f"{args.litellm} not found (install: see /work/shared/PEERS.md)"
        time.sleep(1.0)
        idle_rss = {name: round(rss_mb(s.pid)[0], 1) for name, s in systems.items()}
        print(f"systems: {', '.join(systems)}; skipped: {skipped or 'none'}", flush=True)

        for round_ in range(args.rounds):
            by_step: dict[str, dict[str, dict[str, Any]]] = {}
            for step, (stream, clients) in steps.items():
                by_step[step] = {}
                for name, system in systems.items():
                    payload = chat_payload(system.port, system.model, stream)
                    figures, answered = asyncio.run(load(
                        system.port, [payload], stream=stream, ok=b"fixed " if stream else REPLY.encode(),
                        clients=clients, requests=args.requests if clients == 1 else None,
                        seconds=None if clients == 1 else args.seconds))
                    system.answered[step] = system.answered.get(step, 0) + answered
                    by_step[step][name] = figures
                    print(f"round {round_ + 1} {step:10s} {name:11s} p50 {figures.get('p50_ms', 0):8.2f} ms  "
                          f"p99 {figures.get('p99_ms', 0):8.2f} ms  ttfb {figures.get('ttfb_p50_ms', 0):7.2f} ms  "
                          f"{figures['rps']:7.1f}/s  errors {figures['errors']}", flush=True)
            for name in codes:
                system = systems[name]
                payloads = [chat_payload(system.port, "frugal-search", False, prompt) for prompt in SEARCH_PROMPTS]
                figures, answered = asyncio.run(load(system.port, payloads, stream=False, ok=b'"choices"',
                                                     clients=args.concurrency, seconds=args.seconds))
                system.answered["search"] = system.answered.get("search", 0) + answered
                search_runs[name].append(figures)
                print(f"round {round_ + 1} search     {name:11s} p50 {figures.get('p50_ms', 0):8.2f} ms  "
                      f"p99 {figures.get('p99_ms', 0):8.2f} ms  {figures['rps']:7.1f}/s  errors {figures['errors']}",
                      flush=True)
            rounds.append(by_step)
        time.sleep(3)  # the ledgers' last group commits
        ledgers = {name: ledger_rows(Path(tmp) / name) for name in codes}
        peak_rss = {name: round(rss_mb(s.pid)[1], 1) for name, s in systems.items()}

    add_overheads(rounds)
    summary = summarise(rounds, list(systems))
    search: dict[str, Any] = {}
    for name, runs in search_runs.items():
        counts = systems[name].answered
        search[name] = {"rps": median_of([r["rps"] for r in runs]), "p50_ms": median_of([r.get("p50_ms") for r in runs]),
                        "p99_ms": median_of([r.get("p99_ms") for r in runs]), "errors": sum(r["errors"] for r in runs),
                        "answered_200": counts["search"], "ledger_200_rows": ledgers[name]["search"],
                        "ledger_rows_minus_answers": ledgers[name]["search"] - counts["search"],
                        "all_answered_200": sum(counts.values()), "all_ledger_200_rows": ledgers[name]["all"]}
    if "frugal_code" in search:
        summary["ratios"].setdefault("frugal/frugal_code", {})["search.rps"] = median_of(
            [ratio(a["rps"], b["rps"]) for a, b in zip(search_runs["frugal"], search_runs["frugal_code"], strict=True)])
    aims = {name: check_aims(summary, search, name, args.search_today_rps) for name in codes}
    info["loadavg_end"] = os.getloadavg()
    result = {
        "machine": info, "rounds": args.rounds, "requests_sequential": args.requests, "seconds_concurrent": args.seconds,
        "concurrency": args.concurrency, "systems": {name: {"model": s.model} for name, s in systems.items()},
        "skipped": skipped, "frugal_code": {name: {"path": str(code), "commit": git_commit(code)}
                                            for name, code in codes.items()},
        "search_today_rps": args.search_today_rps, "idle_rss_mb": idle_rss, "peak_rss_mb": peak_rss,
        "summary": summary, "search": search, "aims": aims, "rounds_detail": rounds, "search_rounds": search_runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print_summary(result)
    return 0


#: The printed table's columns: (heading, step, figure).
COLUMNS = (("seq p50", "seq", "p50_ms"), ("p99", "seq", "p99_ms"), ("added", "seq", "added_p50_ms"),
           ("+p99", "seq", "added_p99_ms"), ("ttfb", "seq_stream", "ttfb_p50_ms"),
           ("+ttfb", "seq_stream", "added_ttfb_p50_ms"), ("total", "seq_stream", "p50_ms"),
           ("conc/s", "concurrent", "rps"), ("c p99", "concurrent", "p99_ms"), ("str/s", "concurrent_stream", "rps"))


def print_summary(payload: dict[str, Any]) -> None:
    """The table of medians, the ratios and the aims."""
    summary = payload["summary"]
    print("\n" + " ".join([f"{'system':12s}", *(f"{heading:>8s}" for heading, _, _ in COLUMNS), "errors"]))
    for name in payload["systems"]:
        values = [summary[name][step].get(figure) for _, step, figure in COLUMNS]
        errors = sum(step["errors"] for step in summary[name].values())
        print(" ".join([f"{name:12s}", *(f"{v:8.2f}" if v is not None else f"{'-':>8s}" for v in values), f"{errors:6d}"]))
    print("\nratios (medians of per-round ratios):")
    for pair, figures in summary["ratios"].items():
        print(f"  {pair}: " + ", ".join(f"{k} {v:.2f}" for k, v in figures.items() if v is not None))
    print("\nsearch tier:", json.dumps(payload["search"]))
    for name, aims in payload["aims"].items():
        print(f"\naims ({name}):")
        for aim in aims:
            print(f"  {aim['aim']:34s} {aim['value']!s:>9s} {aim['op']} {aim['threshold']:<5}  met: {aim['met']}")


if __name__ == "__main__":
    sys.exit(main())
