"""What buffering a tier that may still escalate costs a streamed answer's time to first byte (issue 24).

Under ``frugal-auto`` a tier whose answer may still escalate answers in full before anything is streamed
(its gate needs the whole answer); the last tier a request can reach streams live. This serves a real
``frugal serve`` with the real small model in process and an instant echo large tier, and streams the same
prompts, interleaved, four ways: ``frugal-auto`` routed to the small tier (buffered: it may escalate),
``frugal-small`` forced (live), ``frugal-auto`` routed to the large tier (live at once) and ``frugal-large``
forced (live). Time to first content byte and total, medians; ratios against the forced, live stream.
Writes ``bench/results/stream_buffering.json``. Run: ``python bench/stream_buffering.py [--rounds 8]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from served import frugal_served

PROMPTS = ["Write two sentences about the sea.", "Say hello to Ana and ask how she is.",
           "Give three tips for sleeping well.", "Describe a cat in two sentences."]


def config(tmp: Path, route_large: float) -> Path:
    """Echo search and large tiers, the real small model; thresholds pick small (1.0) or large (0.0) first."""
    path = tmp / f"frugal-{route_large}.yaml"
    path.write_text(yaml.safe_dump({
        "data_dir": str(tmp / f"data-{route_large}"), "demo_index": False,
        "search": {"backend": "echo", "enabled": False},
        "small": {"backend": "llamacpp", "timeout_s": 120},
        "large": {"backend": "echo", "options": {"prefix": "large: ", "word_delay": 0.0}},
        "thresholds": {"route.large": route_large, "route.search": 1.0},
    }))
    return path


def ready(url: str, process: subprocess.Popen) -> None:
    """Wait until the small and large tiers have loaded (the search tier is disabled)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("frugal serve exited")
        try:
            tiers = httpx.get(url + "/healthz", timeout=5).json().get("tiers", {})
            if tiers.get("small", {}).get("ready") and tiers.get("large", {}).get("ready"):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("frugal serve did not become ready")


def stream_once(client: httpx.Client, url: str, model: str, prompt: str) -> dict[str, Any]:
    """Stream one answer: seconds to the first content delta and to the end, and the tier that answered."""
    started = time.perf_counter()
    first = None
    body = {"model": model, "stream": True, "max_tokens": 48, "seed": 1,
            "messages": [{"role": "user", "content": prompt}]}
    with client.stream("POST", url + "/v1/chat/completions", json=body) as response:
        route = response.headers.get("x-frugal-route")
        for line in response.iter_lines():
            if first is None and line.startswith("data: {") and '"content":"' in line and '"content":""' not in line:
                first = time.perf_counter() - started
    return {"ttfb_s": first, "total_s": time.perf_counter() - started, "route": route}


def main() -> None:
    """Run the four ways interleaved and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    samples: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        with frugal_served(config(tmp, 1.0), ready, env) as small_first, \
                frugal_served(config(tmp, 0.0), ready, env) as large_first, httpx.Client(timeout=300) as client:
            ways = {"auto_small_buffered": (small_first, "frugal-auto"), "forced_small_live": (small_first, "frugal-small"),
                    "auto_large_live": (large_first, "frugal-auto"), "forced_large_live": (large_first, "frugal-large")}
            for url, model in ways.values():
                stream_once(client, url, model, "warm up")
            for round_ in range(args.rounds):
                for name, (url, model) in ways.items():
                    samples.setdefault(name, []).append(stream_once(client, url, model, PROMPTS[round_ % len(PROMPTS)]))
    summary = {name: {"ttfb_ms_p50": round(statistics.median(s["ttfb_s"] for s in rows if s["ttfb_s"]) * 1000, 1),
                      "total_ms_p50": round(statistics.median(s["total_s"] for s in rows) * 1000, 1),
                      "routes": sorted({s["route"] for s in rows})}
               for name, rows in samples.items()}
    summary["ratios"] = {
        "small_ttfb_buffered_over_live": round(summary["auto_small_buffered"]["ttfb_ms_p50"]
                                               / summary["forced_small_live"]["ttfb_ms_p50"], 2),
        "small_total_buffered_over_live": round(summary["auto_small_buffered"]["total_ms_p50"]
                                                / summary["forced_small_live"]["total_ms_p50"], 2),
        "large_ttfb_auto_over_forced": round(summary["auto_large_live"]["ttfb_ms_p50"]
                                             / summary["forced_large_live"]["ttfb_ms_p50"], 2),
    }
    result = {"bench": "stream_buffering", "rounds": args.rounds, "summary": summary,
              "command": "python bench/stream_buffering.py --rounds " + str(args.rounds),
              "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    out = ROOT / "bench" / "results" / "stream_buffering.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
