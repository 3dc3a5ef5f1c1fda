"""Benchmark the tier classifier per encoder variant: latency, and accuracy/under-routing out of sample.

For each variant (static, minilm) it measures
- decision latency (conversation view, encoder, head and policy) p50/p99 on one thread
  (``torch.set_num_threads(1)``), one request at a time, with the shipped model; for minilm in torch,
  in ONNX Runtime when it is installed, and in bfloat16 when the CPU has it, each with the share of
  decisions that match torch float32;
- (a) a held-out 20 % of our seed set (stratified by tier), the head trained on the rest plus the
  public sets;
- (b) cross-source splits: for each public source, a head trained on everything except that source
  and tested on all of it; pooled over sources (and pooled over the sources whose labels are not a
  judgement call), with a sweep of ``route.large`` and the cost-aware recommendation (``recommend``).
Heads are refitted here with the C and lexical weight the shipped manifest chose (temperature from
3-fold out-of-fold logits; a lexical head's vocabulary from its training rows only), so a full run
takes a few minutes. ``--lexical-weight 0`` refits without the lexical block, for comparison.
Writes bench/results/classifier.json.

    .venv/bin/python bench/classifier.py [--shared-data ../shared/data] [--variants static,minilm]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from classifiers.config import ClassifierConfig, shipped_model_dir
from classifiers.datasets import OUTCOMES_FILE, dataset_of, read_outcomes, summarise, text_key, training_label
from classifiers.encoders import Encoder, SentenceTransformerEncoder, StaticEncoder, cpu_has_bf16
from classifiers.evaluation import apgr, quality_retained, routing_metrics
from classifiers.head import fit_head, fit_temperature
from classifiers.model import STATIC_DIR, load_classifier, read_manifest, without_search
from classifiers.onnx_runtime import onnx_runtime_available
from classifiers.training import encode_views, load_training_rows, row_view
from router.core import TIERS, Message
from router.core.policy import POLICY_THRESHOLDS, Policy

SWEEP = (0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5)
#: Cost of one under-routed request (needs large, sent lower) in units of one needless large call.
UNDER_WEIGHT = 10.0
#: Public sources whose tier labels are our per-item judgement, reported apart.
JUDGEMENT_SOURCES = ("mt_bench", "self_instruct", "dolly_reviewed")
#: The sources of the previous release's cross-source figures (before Dolly's reviewed rows).
PREVIOUS_SOURCES = ("squad", "nq_open", "gsm8k", "humaneval", "mt_bench", "self_instruct", "dolly")


def fit_predict(inputs: np.ndarray, labels: list[str], train: np.ndarray, test: np.ndarray, views: list,
                *, c: float, seed: int, lexical_weight: float = 0.0) -> np.ndarray:
    """Fit a calibrated head on ``train`` rows and return TIERS-ordered probabilities for ``test``.

    A lexical head's vocabulary is fitted on the training rows only, as ``frugal train`` does.
    """
    from sklearn.model_selection import StratifiedKFold

    def texts(idx: np.ndarray) -> list[str]:
        return [views[i].text for i in idx]

    def fit(idx: np.ndarray) -> Any:
        return fit_head(inputs[idx], [labels[i] for i in idx], TIERS, c=c, seed=seed, texts=texts(idx),
                        lexical_weight=lexical_weight)

    y = np.asarray([TIERS.index(labels[i]) for i in train])
    oof = np.zeros((len(train), len(TIERS)))
    for a, b in StratifiedKFold(3, shuffle=True, random_state=seed).split(train, y):
        oof[b] = fit(train[a]).logits(inputs[train[b]], texts(train[b]))
    head = fit(train)
    head.temperature = fit_temperature(oof, y)
    proba = head.proba(inputs[test], texts(test))
    return np.stack([without_search(p) if views[i].follow_up else p for p, i in zip(proba, test, strict=True)])


def seed_holdout(rows: list[dict], labels: list[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row indices: 20 % of the seed set per tier held out; everything else trains."""
    rng = random.Random(seed)
    seed_idx = [i for i, r in enumerate(rows) if r["source"] == "seed"]
    test: list[int] = []
    for tier in TIERS:
        members = [j for j in seed_idx if labels[j] == tier]
        test += rng.sample(members, len(members) // 5)
    test.sort()
    return np.asarray(sorted(set(range(len(rows))) - set(test))), np.asarray(test)


def cross_source(rows: list[dict]) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(source, train, test) row indices for each public source; its whole dataset is left out of training.

    Dolly's rule rows and its reviewed rows are two sources of one dataset: testing either, the head is
    trained without both, so no Dolly request is seen in training.
    """
    for source in sorted({r["source"] for r in rows} - {"seed"}):
        held_out = dataset_of(source)
        yield (source, np.asarray([i for i, r in enumerate(rows) if dataset_of(r["source"]) != held_out]),
               np.asarray([i for i, r in enumerate(rows) if r["source"] == source]))


@dataclass(frozen=True)
class Scores:
    """Tier probabilities in the shape ``Policy.decide`` reads."""

    scores: dict[str, float]


def decide(proba: np.ndarray, policy: Policy) -> list[str]:
    """Policy decisions for TIERS-ordered probability rows."""
    out: list[str] = []
    for p in proba:
        out.append(policy.decide(Scores(dict(zip(TIERS, map(float, p), strict=True)))).tier)
    return out


def sweep(truth: list[str], proba: np.ndarray) -> list[dict[str, Any]]:
    """Under-routing, kept-off-large and cost for each ``route.large`` value.

    ``cost`` counts ``UNDER_WEIGHT`` per under-routed request plus one per request sent to the large
    tier needlessly, per 100 requests.
    """
    rows = []
    for value in SWEEP:
        metrics = routing_metrics(truth, decide(proba, Policy({"route.large": value})))
        under = sum(n for tier, n in metrics["confusion"]["large"].items() if tier != "large")
        over = sum(metrics["confusion"][tier]["large"] for tier in TIERS if tier != "large")
        rows.append({"route.large": value, "under_routing": metrics["under_routing"],
                     "kept_off_large": metrics["kept_off_large"], "accuracy": metrics["accuracy"],
                     "cost": round(100.0 * (UNDER_WEIGHT * under + over) / len(truth), 2)})
    return rows


def cheapest(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The sweep row of least cost (ties: the higher threshold, which keeps more off the large tier)."""
    return min(rows, key=lambda row: (row["cost"], -row["route.large"]))


def recommend(seed_sweep: list[dict[str, Any]], cross_sweep: list[dict[str, Any]], *, tolerance: float) -> dict:
    """The ``route.large`` to ship: cost summed over both out-of-sample evaluations.

    Among the values whose summed cost is within ``tolerance`` of the least (the cost of a single
    under-routed held-out seed request, i.e. within noise), the highest: it keeps the most requests
    off the large tier.
    """
    combined = [
        {"route.large": a["route.large"], "cost": round(a["cost"] + b["cost"], 2),
         "seed_holdout": {k: a[k] for k in ("under_routing", "kept_off_large")},
         "cross_source": {k: b[k] for k in ("under_routing", "kept_off_large")}}
        for a, b in zip(seed_sweep, cross_sweep, strict=True)
    ]
    least = cheapest(combined)["cost"]
    chosen = within_tolerance({row["route.large"]: row["cost"] for row in combined}, tolerance)
    return {**next(row for row in combined if row["route.large"] == chosen), "least_cost": least,
            "tolerance": round(tolerance, 2)}


def within_tolerance(costs: dict[float, float], tolerance: float) -> float:
    """The highest ``route.large`` whose cost is within ``tolerance`` of the least: the shipping rule."""
    least = min(costs.values())
    return max(t for t, cost in costs.items() if cost <= least + tolerance)


def recommend_over_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """``recommend``'s rule over several runs of one variant (e.g. seeds): costs and tolerances summed.

    Each run is a variant's result (``seed_holdout.sweep``, ``cross_source.sweep``, ``recommended``);
    the sweeps must cover the same ``route.large`` values.
    """
    if not runs:
        raise ValueError("no runs to combine")
    totals: dict[float, float] = {}
    for run in runs:
        for a, b in zip(run["seed_holdout"]["sweep"], run["cross_source"]["sweep"], strict=True):
            totals[a["route.large"]] = totals.get(a["route.large"], 0.0) + a["cost"] + b["cost"]
    tolerance = sum(run["recommended"]["tolerance"] for run in runs)
    chosen = within_tolerance(totals, tolerance)
    return {"route.large": chosen, "cost": round(totals[chosen], 2), "least_cost": round(min(totals.values()), 2),
            "tolerance": round(tolerance, 2), "per_run": [run["recommended"]["route.large"] for run in runs],
            "summed_cost": {str(t): round(cost, 2) for t, cost in sorted(totals.items())}}


def latency(
    variant: str, model_dir: Path, texts: list[str], precision: Literal["float32", "bfloat16"] = "float32",
    *, lexical: bool = True, runtime: Literal["torch", "onnx"] = "torch",
) -> dict[str, Any]:
    """Per-request decision latency (view, encode, head, policy) on one thread, and the decisions.

    ``lexical=False`` drops the head's lexical block, to time what it costs (its decisions then differ).
    """
    import torch

    torch.set_num_threads(1)
    config = ClassifierConfig(model_dir=model_dir, variant=variant, threads=1, precision=precision,
                              runtime=runtime)
    classifier = load_classifier(config)
    if not lexical:
        classifier.head.lexicon, classifier.head.lexical_weights = None, None
    policy = Policy()
    for text in texts[:20]:
        policy.decide(classifier.predict([Message("user", text)]))
    times, decisions = [], []
    for text in texts:
        started = time.perf_counter()
        decisions.append(policy.decide(classifier.predict([Message("user", text)])).tier)
        times.append((time.perf_counter() - started) * 1000.0)
    return {"p50": float(np.percentile(times, 50)), "p99": float(np.percentile(times, 99)), "n": len(times),
            "threads": torch.get_num_threads(), "precision": precision,
            "runtime": runtime if variant == "minilm" else "numpy", "decisions": decisions}


#: ``route.large`` values swept for the quality curve (PGR against the large tier's share) and its average, APGR.
QUALITY_SWEEP = tuple(round(i / 100, 2) for i in range(0, 101, 2))


def outcome_records(path: Path | None) -> dict[tuple[str, str], dict[str, Any]]:
    """The judged ``bench/outcomes.py`` records by (source, text key); none without a file."""
    return {} if path is None else {(r["source"], r["key"]): r for r in read_outcomes(path)}


def quality(rows: list[dict], pooled_idx: list[int], pooled: np.ndarray,
            records: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any] | None:
    """Cross-source routing judged on outcomes: quality retained at the default policy, PGR sweep and APGR.

    Also the routing metrics against the outcome labels of the same rows (``training_label``).
    """
    at = [(k, records.get((rows[i]["source"], text_key(rows[i]["text"])))) for k, i in enumerate(pooled_idx)]
    at = [(k, r) for k, r in at if r is not None]
    if not at:
        return None
    proba = pooled[[k for k, _ in at]]
    outcomes = [r for _, r in at]
    default = decide(proba, Policy())
    curve = []
    for value in QUALITY_SWEEP:
        point = quality_retained(outcomes, decide(proba, Policy({"route.large": value})))
        curve.append({"route.large": value, "large_share": point["large_share"], "pgr": point["pgr"],
                      "accuracy": point["accuracy"]})
    by_source: dict[str, Any] = {}
    for source in sorted({r["source"] for r in outcomes}):
        mine = [j for j, r in enumerate(outcomes) if r["source"] == source]
        by_source[source] = quality_retained([outcomes[j] for j in mine], [default[j] for j in mine])
    return {
        "rows": len(outcomes), "default_policy": quality_retained(outcomes, default), "per_source": by_source,
        "apgr": apgr([(p["large_share"], p["pgr"]) for p in curve if p["pgr"] is not None]), "curve": curve,
        "outcome_labels": routing_metrics([training_label(r) or r["outcome_tier"] for r in outcomes], default),
    }


def classifier_has_lexicon(manifest: dict, variant: str) -> bool:
    """Whether the shipped head of a variant carries a lexical block."""
    return bool(manifest["variants"][variant].get("lexical_terms"))


def run_variant(variant: str, rows: list[dict], views: list, args: argparse.Namespace, manifest: dict) -> dict:
    """All measurements of one encoder variant."""
    started = time.perf_counter()
    encoder: Encoder = (StaticEncoder(args.model_dir / STATIC_DIR) if variant == "static"
                        else SentenceTransformerEncoder(None))
    inputs = encode_views(encoder, views)
    encode_seconds = time.perf_counter() - started
    labels = [row["tier"] for row in rows]
    c = manifest["variants"][variant]["C"]
    weight = (args.lexical_weight if args.lexical_weight is not None
              else manifest["variants"][variant].get("lexical_weight", 0.0))
    policy = Policy()
    result: dict[str, Any] = {"C": c, "lexical_weight": weight}

    # (a) held-out 20 % of the seed set, stratified by tier
    train, test = seed_holdout(rows, labels, args.seed)
    proba = fit_predict(inputs, labels, train, test, views, c=c, seed=args.seed, lexical_weight=weight)
    truth = [labels[i] for i in test]
    result["seed_holdout"] = routing_metrics(truth, decide(proba, policy))
    seed_sweep = sweep(truth, proba)
    result["seed_holdout"]["sweep"] = seed_sweep

    # (b) cross-source: hold out each public source entirely
    per_source, pooled_truth, pooled_proba, pooled_sources, pooled_idx = {}, [], [], [], []
    for source, train_idx, test_idx in cross_source(rows):
        pooled_idx += [int(i) for i in test_idx]
        proba = fit_predict(inputs, labels, train_idx, test_idx, views, c=c, seed=args.seed,
                            lexical_weight=weight)
        truth = [labels[i] for i in test_idx]
        metrics = routing_metrics(truth, decide(proba, policy))
        per_source[source] = {k: metrics[k] for k in ("n", "accuracy", "under_routing", "kept_off_large",
                                                      "over_routing", "confusion")}
        pooled_truth += truth
        pooled_sources += [source] * len(truth)
        pooled_proba.append(proba)
    pooled = np.concatenate(pooled_proba)
    pooled_sweep = sweep(pooled_truth, pooled)
    result["cross_source"] = {"per_source": per_source,
                              "pooled": routing_metrics(pooled_truth, decide(pooled, policy)),
                              "sweep": pooled_sweep, "cheapest": cheapest(pooled_sweep)}
    clear = [i for i, source in enumerate(pooled_sources) if source not in JUDGEMENT_SOURCES]
    result["cross_source"]["pooled_clear_labels"] = {
        "sources": sorted({pooled_sources[i] for i in clear}),
        **routing_metrics([pooled_truth[i] for i in clear], decide(pooled[clear], policy)),
    }
    previous = [i for i, source in enumerate(pooled_sources) if source in PREVIOUS_SOURCES]
    result["cross_source"]["pooled_previous_sources"] = {
        "sources": sorted({pooled_sources[i] for i in previous}),
        **routing_metrics([pooled_truth[i] for i in previous], decide(pooled[previous], policy)),
    }
    result["cross_source"]["quality"] = quality(rows, pooled_idx, pooled, args.outcome_records)
    result["recommended"] = recommend(seed_sweep, pooled_sweep, tolerance=100.0 * UNDER_WEIGHT / len(test))
    sample = [r["text"] for r in random.Random(args.seed).sample(rows, min(args.latency_n, len(rows)))]
    timed = latency(variant, args.model_dir, sample)
    reference = timed.pop("decisions")
    result["latency_ms"] = timed
    if classifier_has_lexicon(manifest, variant):
        without = latency(variant, args.model_dir, sample, lexical=False)
        without.pop("decisions")
        result["latency_ms_without_lexical_block"] = without
    if variant == "minilm" and onnx_runtime_available():
        onnx = latency(variant, args.model_dir, sample, runtime="onnx")
        same = sum(a == b for a, b in zip(reference, onnx.pop("decisions"), strict=True)) / len(reference)
        result["latency_ms_onnx"] = {**onnx, "same_decision_as_torch": same}
    if variant == "minilm" and cpu_has_bf16():
        fast = latency(variant, args.model_dir, sample, precision="bfloat16")
        same = sum(a == b for a, b in zip(reference, fast.pop("decisions"), strict=True)) / len(reference)
        result["latency_ms_bfloat16"] = {**fast, "same_decision_as_float32": same}
    result["encode_seconds_all_rows"] = round(encode_seconds, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-dir", type=Path, default=ROOT / "classifiers" / "data")
    parser.add_argument("--shared-data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--model-dir", type=Path, default=shipped_model_dir())
    parser.add_argument("--variants", default="static,minilm")
    parser.add_argument("--cap", type=int, default=300, help="rows per public source and tier")
    parser.add_argument("--latency-n", type=int, default=300)
    parser.add_argument("--lexical-weight", type=float, default=None,
                        help="refit heads with this lexical weight (0: embedding and surface features only); "
                             "default: the shipped manifest's; latency is always the shipped model's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--outcomes", type=Path, default=OUTCOMES_FILE if OUTCOMES_FILE.exists() else None,
                        help="bench/outcomes.py records: they relabel the rows they cover and score the routing "
                             "on outcomes (default: the shipped classifiers/data/labels/outcomes.jsonl)")
    parser.add_argument("--judgement-only", action="store_true",
                        help="train on judgement labels only (the outcomes still score the routing)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "classifier.json")
    args = parser.parse_args(argv)
    args.outcome_records = outcome_records(args.outcomes)
    if not args.shared_data.is_dir():
        parser.error(f"public data folder not found: {args.shared_data} (pass --shared-data)")
    manifest = read_manifest(args.model_dir)
    rows, label_stats = load_training_rows(args.seed_dir, args.shared_data, seed=args.seed, cap=args.cap,
                                           outcomes=None if args.judgement_only else args.outcomes)
    views = [row_view(row) for row in rows]
    results: dict[str, Any] = {
        "command": "python bench/classifier.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "host": {"python": platform.python_version(), "machine": platform.machine()},
        "rows": len(rows), "by_source": summarise(rows), "seed": args.seed, "labels": label_stats,
        "outcomes": str(args.outcomes) if args.outcomes else None, "judgement_only": args.judgement_only,
        "default_thresholds": {k: s.default for k, s in POLICY_THRESHOLDS.items()},
        "under_weight": UNDER_WEIGHT,
        "variants": {},
    }
    for variant in args.variants.split(","):
        print(f"[bench] {variant} …", file=sys.stderr)
        results["variants"][variant] = run_variant(variant, rows, views, args, manifest)
        summary = results["variants"][variant]
        print(json.dumps({"variant": variant, "latency_ms": summary["latency_ms"],
                          "recommended": summary["recommended"],
                          "seed_holdout": {k: summary["seed_holdout"][k] for k in ("accuracy", "under_routing",
                                                                                   "kept_off_large")},
                          "cross_source": {k: summary["cross_source"]["pooled"][k] for k in (
                              "accuracy", "under_routing", "kept_off_large")},
                          "quality": {k: v for k, v in (summary["cross_source"]["quality"] or {}).items()
                                      if k in ("default_policy", "apgr")}}), file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
