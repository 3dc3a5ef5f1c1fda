"""How much of the classifier's under-routing the small tier's own gate catches, with the real small model.

The classifier's under-routing (large-labelled requests sent lower) is measured on splits not used in
training (bench/classifier.py). Such a request is not lost: the tier it was sent to judges its answer and
escalates an insufficient one. This runs the real small tier (SmolLM2-135M through llama.cpp, default
options and the default ``small.min_confidence``) on every cross-source request the static path under-routes
to ``small``, and on a sample of correctly routed ``small`` requests, and reports how many the gate
escalates: the effective under-routing, and the price in needless escalations. Requests under-routed to
``search`` are counted apart (whether the gate rejects them depends on the operator's corpus; by default a
rejected lookup goes to the large tier). Writes bench/results/safety_net.json.

    .venv/bin/python bench/safety_net.py [--shared-data ../shared/data] [--control 40] [--logprob-check]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import classifier as shared  # bench/classifier.py: the same splits, fitting and decisions

from backends.config import TierConfig
from classifiers.config import shipped_model_dir
from classifiers.encoders import StaticEncoder
from classifiers.model import STATIC_DIR, read_manifest
from classifiers.training import encode_views, load_training_rows, row_view
from router.core import CompletionRequest, Message
from router.core.errors import BackendTimeoutError
from router.core.policy import Policy, all_specs

GATE_SWEEP = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)


def cross_source_decisions(rows: list[dict], views: list, seed: int) -> list[tuple[int, str]]:
    """(row index, decision) for every public row, each decided by a head trained without its source."""
    labels = [row["tier"] for row in rows]
    inputs = encode_views(StaticEncoder(shipped_model_dir() / STATIC_DIR), views)
    spec = read_manifest(shipped_model_dir())["variants"]["static"]
    c, weight = spec["C"], spec.get("lexical_weight", 0.0)
    policy = Policy()
    out: list[tuple[int, str]] = []
    for _source, train, test in shared.cross_source(rows):
        proba = shared.fit_predict(inputs, labels, train, test, views, c=c, seed=seed, lexical_weight=weight)
        out += list(zip(test.tolist(), shared.decide(proba, policy), strict=True))
    return out


async def judge(indices: list[int], rows: list[dict], min_confidence: float, *,
                logprob_check: bool) -> list[dict[str, Any]]:
    """Run the real small tier on each row's conversation; its verdict and time."""
    from backends.llamacpp import build

    small = build(TierConfig(backend="llamacpp", options={"logprob_check": logprob_check}), tier="small",
                  data_dir=ROOT)
    await small.start()
    results = []
    try:
        for i in indices:
            row = rows[i]
            messages = [Message(m["role"], m["content"]) for m in row["messages"]] if row.get("messages") else [
                Message("user", row["text"])]
            started = time.perf_counter()
            try:
                completion = await small.complete(CompletionRequest(messages=messages, min_confidence=min_confidence))
            except BackendTimeoutError:  # the router escalates a timed-out tier: counted as caught, and reported
                results.append({"source": row["source"], "sufficient": False, "confidence": None,
                                "reason": "timeout", "seconds": round(time.perf_counter() - started, 2),
                                "completion_tokens": 0})
                continue
            results.append({"source": row["source"], "sufficient": completion.sufficient,
                            "confidence": completion.confidence, "reason": completion.reason, "seconds": round(time.perf_counter() - started, 2),
                            "completion_tokens": completion.completion_tokens})
    finally:
        await small.aclose()
    return results


def main() -> int:
    """Decide, judge, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared-data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--control", type=int, default=40, help="correctly routed small requests to sample")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--logprob-check", action="store_true", help="small tier option logprob_check (default off)")
    parser.add_argument("--out", type=Path, default=None, help="default bench/results/safety_net[_logprob].json")
    args = parser.parse_args()
    if not args.shared_data.is_dir():
        parser.error(f"public data folder not found: {args.shared_data} (pass --shared-data)")
    rows, _ = load_training_rows(ROOT / "classifiers" / "data", args.shared_data, seed=args.seed, cap=300)
    views = [row_view(row) for row in rows]
    decisions = cross_source_decisions(rows, views, args.seed)
    large = [(i, d) for i, d in decisions if rows[i]["tier"] == "large"]
    to_small = [i for i, d in large if d == "small"]
    to_search = [i for i, d in large if d == "search"]
    right_small = [i for i, d in decisions if rows[i]["tier"] == "small" and d == "small"]
    control = random.Random(args.seed).sample(right_small, min(args.control, len(right_small)))
    min_confidence = next(s.default for s in all_specs() if s.name == "small.min_confidence")
    print(f"[bench] judging {len(to_small)} under-routed and {len(control)} control requests", file=sys.stderr)
    under = asyncio.run(judge(to_small, rows, min_confidence, logprob_check=args.logprob_check))
    ctrl = asyncio.run(judge(control, rows, min_confidence, logprob_check=args.logprob_check))
    caught = sum(not r["sufficient"] for r in under)
    result = {
        "command": "python bench/safety_net.py " + " ".join(sys.argv[1:]),
        "policy": dict(Policy().thresholds), "small_min_confidence": min_confidence,
        "logprob_check": args.logprob_check,
        "large_requests": len(large),
        "under_routed_to_small": len(to_small), "under_routed_to_search": len(to_search),
        "caught_by_small_gate": caught,
        "under_routing_before_gate": round((len(to_small) + len(to_search)) / len(large), 4),
        "under_routing_after_small_gate": round((len(to_small) - caught + len(to_search)) / len(large), 4),
        "timeouts": sum(r["reason"] == "timeout" for r in under + ctrl),
        "reasons": dict(Counter(r["reason"].split(":")[0] for r in under if not r["sufficient"])),
        "caught_by_source": dict(Counter(r["source"] for r in under if not r["sufficient"])),
        "under_routed_by_source": dict(Counter(r["source"] for r in under)),
        "control_small_requests": len(ctrl),
        "control_needlessly_escalated": sum(not r["sufficient"] for r in ctrl),
        "gate_curve": [  # what another small.min_confidence would do, from the recorded confidences
            {"min_confidence": t,
             "caught": sum((r["confidence"] or 0.0) < t for r in under),
             "needlessly_escalated": sum((r["confidence"] or 0.0) < t for r in ctrl)}
            for t in GATE_SWEEP],
        "median_small_seconds": float(np.median([r["seconds"] for r in under + ctrl])) if under or ctrl else None,
        "under_routed": under, "control": ctrl,
    }
    out = args.out or ROOT / "bench" / "results" / ("safety_net_logprob.json" if args.logprob_check else "safety_net.json")
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k not in ("under_routed", "control")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
