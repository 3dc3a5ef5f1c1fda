"""Benchmark the tier classifier per encoder variant: latency, and accuracy/under-routing out of sample.

For each variant (static, minilm) it measures
- decision latency (conversation view, encoder, head and policy) p50/p99 on one thread, one request
  at a time, with the shipped model;
- (a) a held-out 20 % of our seed set (stratified by tier), the head trained on the rest plus the
  public sets;
- (b) cross-source splits: for each public source, a head trained on everything except that source
  and tested on all of it; pooled over sources, with a sweep of ``route.large``.
Heads are refitted here with the C the shipped manifest chose (temperature from 3-fold
out-of-fold logits), so a full run takes a few minutes. Writes bench/results/classifier.json.

    .venv/bin/python bench/classifier.py [--shared-data ../shared/data] [--variants static,minilm]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backends.base import TIERS, Message  # noqa: E402
from classifiers.config import ClassifierConfig, shipped_model_dir  # noqa: E402
from classifiers.evaluation import routing_metrics  # noqa: E402
from classifiers.head import fit_head, fit_temperature  # noqa: E402
from classifiers.model import STATIC_DIR, load_classifier, read_manifest, without_search  # noqa: E402
from classifiers.training import build_encoder, encode_views, load_training_rows, row_view  # noqa: E402
from router.policy import POLICY_THRESHOLDS, Policy  # noqa: E402

SWEEP = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5)


def fit_predict(inputs: np.ndarray, labels: list[str], train: np.ndarray, test: np.ndarray, views: list,
                *, c: float, seed: int) -> np.ndarray:
    """Fit a calibrated head on ``train`` rows and return TIERS-ordered probabilities for ``test``."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray([TIERS.index(labels[i]) for i in train])
    oof = np.zeros((len(train), len(TIERS)))
    for a, b in StratifiedKFold(3, shuffle=True, random_state=seed).split(train, y):
        head = fit_head(inputs[train[a]], [labels[i] for i in train[a]], TIERS, c=c, seed=seed)
        oof[b] = head.logits(inputs[train[b]])
    head = fit_head(inputs[train], [labels[i] for i in train], TIERS, c=c, seed=seed)
    head.temperature = fit_temperature(oof, y)
    proba = head.proba(inputs[test])
    return np.stack([without_search(p) if views[i].follow_up else p for p, i in zip(proba, test, strict=True)])


def decide(proba: np.ndarray, policy: Policy) -> list[str]:
    """Policy decisions for TIERS-ordered probability rows."""
    out = []
    for p in proba:
        holder = type("P", (), {"scores": dict(zip(TIERS, map(float, p), strict=True))})
        out.append(policy.decide(holder).tier)
    return out


def sweep(truth: list[str], proba: np.ndarray) -> list[dict[str, Any]]:
    """Under-routing and kept-off-large for each ``route.large`` value."""
    rows = []
    for value in SWEEP:
        metrics = routing_metrics(truth, decide(proba, Policy({"route.large": value})))
        rows.append({"route.large": value, "under_routing": metrics["under_routing"],
                     "kept_off_large": metrics["kept_off_large"], "accuracy": metrics["accuracy"]})
    return rows


def latency(variant: str, model_dir: Path, texts: list[str]) -> dict[str, float]:
    """Per-request decision latency (view, encode, head, policy) on one thread."""
    classifier = load_classifier(ClassifierConfig(model_dir=model_dir, variant=variant, threads=1))
    policy = Policy()
    for text in texts[:20]:
        policy.decide(classifier.predict([Message("user", text)]))
    times = []
    for text in texts:
        started = time.perf_counter()
        policy.decide(classifier.predict([Message("user", text)]))
        times.append((time.perf_counter() - started) * 1000.0)
    return {"p50": float(np.percentile(times, 50)), "p99": float(np.percentile(times, 99)), "n": len(times)}


def run_variant(variant: str, rows: list[dict], views: list, args: argparse.Namespace, manifest: dict) -> dict:
    """All measurements of one encoder variant."""
    started = time.perf_counter()
    encoder, _ = build_encoder(variant, Path("/nonexistent"), encoder=None,
                               static_from=None, seed=args.seed) if variant == "minilm" else (None, None)
    if variant == "static":
        from classifiers.encoders import StaticEncoder

        encoder = StaticEncoder(args.model_dir / STATIC_DIR)
    inputs = encode_views(encoder, views)
    encode_seconds = time.perf_counter() - started
    labels = [row["tier"] for row in rows]
    c = manifest["variants"][variant]["C"]
    policy = Policy()
    result: dict[str, Any] = {"C": c, "encode_seconds_all_rows": round(encode_seconds, 1)}

    # (a) held-out 20 % of the seed set, stratified by tier
    rng = random.Random(args.seed)
    seed_idx = [i for i, r in enumerate(rows) if r["source"] == "seed"]
    test = sorted(i for tier in TIERS for i in (lambda xs: rng.sample(xs, len(xs) // 5))(
        [j for j in seed_idx if labels[j] == tier]))
    train = np.asarray(sorted(set(range(len(rows))) - set(test)))
    proba = fit_predict(inputs, labels, train, np.asarray(test), views, c=c, seed=args.seed)
    truth = [labels[i] for i in test]
    result["seed_holdout"] = routing_metrics(truth, decide(proba, policy))
    result["seed_holdout"]["sweep"] = sweep(truth, proba)

    # (b) cross-source: hold out each public source entirely
    per_source, pooled_truth, pooled_proba = {}, [], []
    for source in sorted({r["source"] for r in rows} - {"seed"}):
        test_idx = np.asarray([i for i, r in enumerate(rows) if r["source"] == source])
        train_idx = np.asarray([i for i, r in enumerate(rows) if r["source"] != source])
        proba = fit_predict(inputs, labels, train_idx, test_idx, views, c=c, seed=args.seed)
        truth = [labels[i] for i in test_idx]
        metrics = routing_metrics(truth, decide(proba, policy))
        per_source[source] = {k: metrics[k] for k in ("n", "accuracy", "under_routing", "kept_off_large",
                                                      "over_routing", "confusion")}
        pooled_truth += truth
        pooled_proba.append(proba)
    pooled = np.concatenate(pooled_proba)
    result["cross_source"] = {"per_source": per_source,
                              "pooled": routing_metrics(pooled_truth, decide(pooled, policy)),
                              "sweep": sweep(pooled_truth, pooled)}
    sample = [r["text"] for r in random.Random(args.seed).sample(rows, min(args.latency_n, len(rows)))]
    result["latency_ms"] = latency(variant, args.model_dir, sample)
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
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "classifier.json")
    args = parser.parse_args(argv)
    if not args.shared_data.is_dir():
        parser.error(f"public data folder not found: {args.shared_data} (pass --shared-data)")
    manifest = read_manifest(args.model_dir)
    rows, _ = load_training_rows(args.seed_dir, args.shared_data, seed=args.seed, cap=args.cap)
    views = [row_view(row) for row in rows]
    results: dict[str, Any] = {
        "command": "python bench/classifier.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "host": {"python": platform.python_version(), "machine": platform.machine()},
        "rows": len(rows), "default_thresholds": {k: s.default for k, s in POLICY_THRESHOLDS.items()},
        "variants": {},
    }
    for variant in args.variants.split(","):
        print(f"[bench] {variant} …", file=sys.stderr)
        results["variants"][variant] = run_variant(variant, rows, views, args, manifest)
        summary = results["variants"][variant]
        print(json.dumps({"variant": variant, "latency_ms": summary["latency_ms"],
                          "seed_holdout": {k: summary["seed_holdout"][k] for k in ("accuracy", "under_routing",
                                                                                   "kept_off_large")},
                          "cross_source": {k: summary["cross_source"]["pooled"][k] for k in (
                              "accuracy", "under_routing", "kept_off_large")}}), file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
