"""Benchmark the model tiers on this machine: small-tier speed and energy, and the cost of one escalation.

Small tier (SmolLM2-135M in process, streaming): time to first token, decode tokens/s, CPU seconds and
the estimated energy per output token (CPU seconds × watts per busy thread; 4 W by default, the same
assumption as the energy estimator). Escalation: llama-cpp-python's OpenAI-compatible server with the
same SmolLM2 file stands in for the large tier (reached through the litellm backend over HTTP); the added
latency of one escalation is median(small attempt + large answer) − median(large answer alone). Both
arms run after an untimed call that caches the prompt in the server, and 0.5 s apart so the server's
idle OpenMP threads (which spin briefly after each request) do not slow the in-process small model.

Prompts are user-oriented instructions (instruction + input) from self_instruct_user_oriented, the
first ``--prompts`` of a fixed shuffle (seed 0). Figures are medians over ``--runs`` rounds.

    .venv/bin/python bench/models.py [--data ../shared/data/self_instruct_user_oriented/user_oriented_instructions.jsonl]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT / "../shared/data/self_instruct_user_oriented/user_oriented_instructions.jsonl"


def load_prompts(path: Path, count: int) -> list[str]:
    """The first ``count`` instruction+input prompts of a fixed shuffle."""
    if not path.is_file():
        raise SystemExit(f"data file not found: {path} (pass --data PATH to user_oriented_instructions.jsonl)")
    prompts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        instance = (row.get("instances") or [{}])[0]
        text = row["instruction"] + ("\n\n" + instance["input"] if instance.get("input") else "")
        if len(text) < 1200:
            prompts.append(text)
    random.Random(0).shuffle(prompts)
    return prompts[:count]


def median(values: list[float]) -> float:
    return round(statistics.median(values), 4) if values else float("nan")


async def bench_small(prompts: list[str], runs: int, max_tokens: int, watts: float) -> dict[str, object]:
    from backends.config import TierConfig
    from backends.llamacpp import build
    from router.core import Completion, CompletionRequest, Message, TextDelta

    small = build(TierConfig(backend="llamacpp"), tier="small", data_dir=ROOT)
    await small.start()
    await small.complete(CompletionRequest(messages=[Message("user", "Hi")], max_tokens=4))  # warm-up
    rows = []
    for _ in range(runs):
        for prompt in prompts:
            request = CompletionRequest(messages=[Message("user", prompt)], max_tokens=max_tokens)
            started = time.perf_counter()
            first = None
            final = None
            async for event in small.stream(request):
                if isinstance(event, TextDelta) and first is None:
                    first = time.perf_counter() - started
                if isinstance(event, Completion):
                    final = event
            total = time.perf_counter() - started
            assert final is not None
            tokens = final.completion_tokens
            rows.append({
                "ttft_s": first or total, "total_s": total, "completion_tokens": tokens,
                "prompt_tokens": final.prompt_tokens, "cpu_s": final.cpu_seconds or 0.0,
                "decode_tok_s": (tokens - 1) / (total - first) if first and tokens > 1 and total > first else None,
                "sufficient": final.sufficient,
            })
    await small.aclose()
    joules = [r["cpu_s"] * watts / r["completion_tokens"] for r in rows if r["completion_tokens"]]
    return {
        "requests": len(rows),
        "median_ttft_s": median([r["ttft_s"] for r in rows]),
        "median_decode_tokens_per_s": median([r["decode_tok_s"] for r in rows if r["decode_tok_s"]]),
        "median_end_to_end_tokens_per_s": median([r["completion_tokens"] / r["total_s"] for r in rows]),
        "median_total_s": median([r["total_s"] for r in rows]),
        "median_prompt_tokens": median([r["prompt_tokens"] for r in rows]),
        "median_completion_tokens": median([r["completion_tokens"] for r in rows]),
        "median_cpu_s": median([r["cpu_s"] for r in rows]),
        "median_cpu_s_per_output_token": median([r["cpu_s"] / r["completion_tokens"] for r in rows
                                                 if r["completion_tokens"]]),
        "median_j_per_output_token": median(joules),
        "median_wh_per_request": median([r["cpu_s"] * watts / 3600 for r in rows]),
        "sufficient_share": round(sum(bool(r["sufficient"]) for r in rows) / len(rows), 3),
    }


async def bench_escalation(prompts: list[str], runs: int, max_tokens: int) -> dict[str, object]:
    from backends.config import TierConfig
    from backends.litellm_backend import build as build_large
    from backends.llamacpp import build as build_small
    from router.core import CompletionRequest, Message
    from tests.fixtures.llama_server import smollm2_path, start_llama_server, stop_process

    process, base_url = start_llama_server(smollm2_path())
    try:
        small = build_small(TierConfig(backend="llamacpp"), tier="small", data_dir=ROOT)
        large = build_large(TierConfig(backend="litellm", model="openai/smollm2", api_base=base_url, timeout_s=120),
                            tier="large", data_dir=ROOT)
        warm = CompletionRequest(messages=[Message("user", "Hi")], max_tokens=4)
        await small.complete(warm)
        await large.complete(warm)
        direct, escalated, small_attempts = [], [], []
        for _ in range(runs):
            for prompt in prompts:
                # temperature 0 (greedy) makes the large answer the same in both arms; an untimed first call
                # puts the prompt in the server's cache so both timed arms see the same prefill cost
                request = CompletionRequest(messages=[Message("user", prompt)], max_tokens=max_tokens,
                                            temperature=0.0)
                await large.complete(request)
                started = time.perf_counter()
                await large.complete(request)
                direct.append(time.perf_counter() - started)
                await asyncio.sleep(0.5)  # let the server's idle OpenMP threads stop spinning on our 2 cores
                judged = CompletionRequest(messages=request.messages, max_tokens=max_tokens, temperature=0.0,
                                           min_confidence=1.01)  # above any confidence: always escalates
                started = time.perf_counter()
                attempt = await small.complete(judged)
                small_done = time.perf_counter() - started
                assert not attempt.sufficient
                await large.complete(request)
                escalated.append(time.perf_counter() - started)
                small_attempts.append(small_done)
        await small.aclose()
    finally:
        stop_process(process)
    return {
        "requests": len(direct),
        "large_stand_in": "SmolLM2-135M-Instruct Q4_1 via llama_cpp.server over HTTP (litellm openai/ provider)",
        "median_large_direct_s": median(direct),
        "median_small_attempt_s": median(small_attempts),
        "median_small_then_large_s": median(escalated),
        "median_added_latency_s": round(median(escalated) - median(direct), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--prompts", type=int, default=6, help="prompts sampled from the data")
    parser.add_argument("--runs", type=int, default=3, help="rounds over the prompts")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--watts-per-thread", type=float, default=4.0, help="W per busy CPU thread (range 2-10)")
    parser.add_argument("--skip-escalation", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/models.json")
    args = parser.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    prompts = load_prompts(args.data.resolve(), args.prompts)
    started = time.perf_counter()
    result: dict[str, object] = {
        "command": "python bench/models.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_avg_at_start": os.getloadavg()},
        "settings": {"prompts": len(prompts), "runs": args.runs, "max_tokens": args.max_tokens,
                     "watts_per_busy_thread": args.watts_per_thread, "n_threads": 2, "n_ctx": 2048},
        "small": asyncio.run(bench_small(prompts, args.runs, args.max_tokens, args.watts_per_thread)),
    }
    if not args.skip_escalation:
        result["escalation"] = asyncio.run(bench_escalation(prompts, args.runs, args.max_tokens))
    result["machine"]["load_avg_at_end"] = os.getloadavg()  # type: ignore[index]
    result["wall_s"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
