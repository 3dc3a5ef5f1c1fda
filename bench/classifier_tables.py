"""Render the markdown tables of docs/benchmarks/classifier.md from bench/results/classifier*.json.

Prints to stdout; the doc's tables are pasted from this output, so no figure is typed by hand.

    .venv/bin/python bench/classifier_tables.py [--results bench/results/classifier.json]
        [--baseline bench/results/classifier_no_lexical.json] [--options bench/results/classifier_options.json]
        [--runs bench/results/classifier.json bench/results/classifier_seed1_static.json ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from classifier import recommend_over_runs

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
#: The runs whose sweeps the shipped ``route.large`` is chosen over (seeds 0, 1, 2 of bench/classifier.py).
SEED_RUNS = ("classifier.json", "classifier_seed1_static.json", "classifier_seed2_static.json")


def pct(value: float | None) -> str:
    """A share as a percentage with one decimal, or a dash."""
    return "–" if value is None else f"{100 * value:.1f} %"


def quality_rows(name: str, variant: dict[str, Any]) -> list[str]:
    """Default-policy rows: seed hold-out, cross-source pooled, clear labels, previous sources."""
    cross = variant["cross_source"]
    rows = []
    evaluations = [("(a) seed hold-out 20 %", variant["seed_holdout"]), ("(b) cross-source, all sources",
                    cross["pooled"]), ("(b) cross-source, clear-label sources", cross["pooled_clear_labels"])]
    if "pooled_previous_sources" in cross:
        evaluations.append(("(b) cross-source, the previous release's seven sources",
                            cross["pooled_previous_sources"]))
    for label, m in evaluations:
        rows.append(f"| {name} | {label} | {m['n']} | {pct(m['accuracy'])} | {pct(m['under_routing'])} | "
                    f"{pct(m['kept_off_large'])} | {pct(m['over_routing'])} |")
    return rows


def per_source(result: dict[str, Any]) -> list[str]:
    """One row per held-out source, both variants."""
    static, minilm = (result["variants"][v]["cross_source"]["per_source"] for v in ("static", "minilm"))
    rows = []
    for source in sorted(static):
        s, m = static[source], minilm[source]
        rows.append(f"| {source} | {s['n']} | {pct(s['accuracy'])} | {pct(s['under_routing'])} | "
                    f"{pct(s['kept_off_large'])} | {pct(m['accuracy'])} | {pct(m['under_routing'])} | "
                    f"{pct(m['kept_off_large'])} |")
    return rows


def sweep(variant: dict[str, Any]) -> list[str]:
    """The route.large sweep with the summed cost, the recommended value marked."""
    chosen = variant["recommended"]["route.large"]
    rows = []
    for a, b in zip(variant["seed_holdout"]["sweep"], variant["cross_source"]["sweep"], strict=True):
        mark = " **←**" if a["route.large"] == chosen else ""
        rows.append(f"| {a['route.large']}{mark} | {pct(a['under_routing'])} | {pct(a['kept_off_large'])} | "
                    f"{a['cost']} | {pct(b['under_routing'])} | {pct(b['kept_off_large'])} | {b['cost']} | "
                    f"{round(a['cost'] + b['cost'], 2)} |")
    rec = variant["recommended"]
    rows.append(f"\nRecommended: route.large = {chosen} (least summed cost {rec['least_cost']}, "
                f"tolerance {rec['tolerance']}).")
    return rows


def over_runs(paths: list[Path]) -> list[str]:
    """The static variant's summed cost over several runs and the value ``recommend``'s rule picks."""
    runs = [json.loads(path.read_text(encoding="utf-8")) for path in paths]
    rec = recommend_over_runs([run["variants"]["static"] for run in runs])
    seeds = ", ".join(str(run.get("seed", "?")) for run in runs)
    rows = [f"| route.large | summed cost over seeds {seeds} |", "|---|---|"]
    for t, cost in rec["summed_cost"].items():
        rows.append(f"| {t}{' **←**' if float(t) == rec['route.large'] else ''} | {cost} |")
    rows.append(f"\nOver {len(runs)} runs: route.large = {rec['route.large']} (least summed cost "
                f"{rec['least_cost']}, tolerance {rec['tolerance']}; each run alone: {rec['per_run']}).")
    return rows


def options(result: dict[str, Any]) -> list[str]:
    """Options at each threshold: under-routing / kept off, in %."""
    rows = []
    for name, cells in result["options"].items():
        for t in result["thresholds"]:
            parts = [f"{100 * cells[f'{k}@{t}']['under_routing']:.1f} / {100 * cells[f'{k}@{t}']['kept_off_large']:.1f}"
                     for k in ("seed_holdout", "cross_source", "cross_source_clear_labels")]
            rows.append(f"| {name} | {t} | " + " | ".join(parts) + " |")
            name = ""
    return rows


def main() -> int:
    """Print every table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS / "classifier.json")
    parser.add_argument("--baseline", type=Path, default=RESULTS / "classifier_no_lexical.json")
    parser.add_argument("--options", type=Path, default=RESULTS / "classifier_options.json")
    parser.add_argument("--runs", type=Path, nargs="+", default=[RESULTS / name for name in SEED_RUNS])
    args = parser.parse_args()
    result = json.loads(args.results.read_text(encoding="utf-8"))
    print("| variant | evaluation | n | accuracy | under-routing | kept off large | over-routing |")
    print("|---|---|---|---|---|---|---|")
    for name in ("static", "minilm"):
        print("\n".join(quality_rows(name, result["variants"][name])))
    if args.baseline.exists():
        baseline = json.loads(args.baseline.read_text(encoding="utf-8"))
        for name in ("static", "minilm"):
            print("\n".join(quality_rows(f"{name}, no lexical", baseline["variants"][name])))
    print("\n| source | n | static accuracy | static under-routing | static kept off large | minilm accuracy "
          "| minilm under-routing | minilm kept off large |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(per_source(result)))
    for name in ("static", "minilm"):
        print(f"\n### Sweep of route.large — {name}\n")
        print("| route.large | seed under | seed kept | seed cost | cross under | cross kept | cross cost | summed cost |")
        print("|---|---|---|---|---|---|---|---|")
        print("\n".join(sweep(result["variants"][name])))
    for name in ("static", "minilm"):
        holdout = result["variants"][name]["seed_holdout"]
        tiers = "; ".join(f"{t} P {pct(m['precision'])} R {pct(m['recall'])}" for t, m in holdout["per_tier"].items())
        print(f"\n{name} seed hold-out confusion (rows: label, columns: decision): {holdout['confusion']}; "
              f"per tier: {tiers}")
        for key, timed in result["variants"][name].items():
            if key.startswith("latency_ms"):
                same = {k: v for k, v in timed.items() if k.startswith("same_decision")}
                print(f"\n{name} {key}: p50 {timed['p50']:.2f} / p99 {timed['p99']:.2f} ms, n {timed['n']}, "
                      f"{timed.get('runtime', 'torch')}, {timed['precision']} {same or ''}")
    if all(path.exists() for path in args.runs):
        print("\n### route.large over seeds — static\n")
        print("\n".join(over_runs(args.runs)))
    if args.options.exists():
        print("\n| option | t | seed hold-out | cross-source, all | cross-source, clear labels |")
        print("|---|---|---|---|---|")
        print("\n".join(options(json.loads(args.options.read_text(encoding="utf-8")))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
