"""Compare head and encoder options for the tier classifier on bench/classifier.py's out-of-sample splits.

Options: the static path and MiniLM, each with and without the lexical (TF-IDF) block and with
other lexical weights; surface and lexical features without any embedding; their averaged
probabilities (``ensemble``) and one head over both embeddings (``concat``). For each, under-routing and the kept-off-large share at several
``route.large`` values on (a) the seed hold-out, (b) cross-source pooled, (c) cross-source without the
judgement-labelled sets. Answers "would a different head or encoder meet the aims?" with figures.
Writes bench/results/classifier_options.json (about 10 minutes on 2 cores).

    .venv/bin/python bench/classifier_options.py [--shared-data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import classifier as shared  # bench/classifier.py: the same splits, fitting and decisions

from classifiers.config import shipped_model_dir
from classifiers.encoders import SentenceTransformerEncoder, StaticEncoder
from classifiers.evaluation import routing_metrics
from classifiers.features import FEATURE_NAMES
from classifiers.model import STATIC_DIR, read_manifest
from classifiers.training import encode_views, load_training_rows, row_view
from router.core.policy import Policy

THRESHOLDS = (0.1, 0.15, 0.2, 0.25)
N_FEATURES = len(FEATURE_NAMES)  # surface features at the end of each input row; kept once in concat
Proba = Callable[[np.ndarray, np.ndarray], np.ndarray]


def splits(rows: list[dict], labels: list[str], seed: int) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """The seed hold-out, then one split per held-out public source (bench/classifier.py's splits)."""
    yield ("seed", *shared.seed_holdout(rows, labels, seed))
    yield from shared.cross_source(rows)


def evaluate(proba: Proba, rows: list[dict], labels: list[str], seed: int) -> dict[str, dict[str, float]]:
    """Under-routing and kept-off-large per threshold for the three evaluations."""
    per = {name: (test, proba(train, test)) for name, train, test in splits(rows, labels, seed)}
    out: dict[str, dict[str, float]] = {}
    for threshold in THRESHOLDS:
        policy = Policy({"route.large": threshold})
        groups: dict[str, tuple[list[str], list[str]]] = {"seed_holdout": ([], []), "cross_source": ([], []),
                                                          "cross_source_clear_labels": ([], [])}
        for name, (test, p) in per.items():
            truth, decided = [labels[i] for i in test], shared.decide(p, policy)
            keys = ["seed_holdout"] if name == "seed" else (
                ["cross_source"] + ([] if name in shared.JUDGEMENT_SOURCES else ["cross_source_clear_labels"]))
            for key in keys:
                groups[key][0].extend(truth)
                groups[key][1].extend(decided)
        for key, (truth, decided) in groups.items():
            metrics = routing_metrics(truth, decided)
            out[f"{key}@{threshold}"] = {"under_routing": metrics["under_routing"],
                                         "kept_off_large": metrics["kept_off_large"]}
    return out


def main() -> int:
    """Encode once per encoder, evaluate every option, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared-data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "classifier_options.json")
    args = parser.parse_args()
    if not args.shared_data.is_dir():
        parser.error(f"public data folder not found: {args.shared_data} (pass --shared-data)")
    rows, _ = load_training_rows(ROOT / "classifiers" / "data", args.shared_data, seed=args.seed, cap=300)
    views = [row_view(row) for row in rows]
    labels = [row["tier"] for row in rows]
    static = encode_views(StaticEncoder(shipped_model_dir() / STATIC_DIR), views)
    minilm = encode_views(SentenceTransformerEncoder(None), views)

    shipped = read_manifest(shipped_model_dir())["variants"]
    lex = float(shipped["static"].get("lexical_weight", 0.0))

    def head(inputs: np.ndarray, c: float, weight: float) -> Proba:
        return lambda train, test: shared.fit_predict(inputs, labels, train, test, views, c=c, seed=args.seed,
                                                      lexical_weight=weight)

    options: dict[str, Proba] = {
        f"static C=0.03 lexical {lex:g} (shipped)": head(static, 0.03, lex),
        "static C=0.03 no lexical (previous release)": head(static, 0.03, 0.0),
        "static C=0.03 lexical 10": head(static, 0.03, 10.0),
        "static C=0.03 lexical 40": head(static, 0.03, 40.0),
        f"static C=0.1 lexical {lex:g}": head(static, 0.1, lex),
        f"surface features + lexical {lex:g}, no embedding": head(static[:, -N_FEATURES:], 0.03, lex),
        f"minilm C=0.03 lexical {lex:g}": head(minilm, 0.03, lex),
        "minilm C=0.03 no lexical": head(minilm, 0.03, 0.0),
        f"ensemble (mean of static and minilm, lexical {lex:g})":
            lambda tr, te: (head(static, 0.03, lex)(tr, te) + head(minilm, 0.03, lex)(tr, te)) / 2,
        f"concat (one head, both embeddings, lexical {lex:g})":
            head(np.hstack([static[:, :-N_FEATURES], minilm]), 0.03, lex),
    }
    results = {"command": "python bench/classifier_options.py " + " ".join(sys.argv[1:]), "rows": len(rows),
               "thresholds": list(THRESHOLDS), "options": {}}
    for name, proba in options.items():
        print(f"[bench] {name}", file=sys.stderr)
        results["options"][name] = evaluate(proba, rows, labels, args.seed)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
