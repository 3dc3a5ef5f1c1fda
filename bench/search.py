"""Search-tier benchmark: retrieval quality, answer quality, the gate's curve, latency and index size.

Usage (from the repo root):
    .venv/bin/python bench/search.py [--squad DIR] [--vital FILE] [--nq FILE] [--sample N] [--seed S]

- SQuAD v1.1 dev: index the 2,067 passages, ask a seeded sample of the questions (all with --sample 0):
  recall@1/@5 of the gold passage, answer-hit rate (a gold answer appears in the composed answer),
  and the gate's coverage/precision curve over thresholds and at the default.
- Wikipedia vital articles: build time and size of the index; NQ-open dev questions against it:
  share accepted and answer-hit rate among accepted; p50/p99 latency and CPU ms per query.
Writes bench/results/search.json.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import string
import sys
import tempfile
import time
import unicodedata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backends.search.backend import SearchOptions, TantivyBackend
from backends.search.compose import compose
from backends.search.gate import DEFAULT_MIN_CONFIDENCE, confidence, features
from backends.search.index import SearchIndex
from backends.search.ingest import index_stats, ingest_documents, ingest_paths
from backends.search.readers import RawDocument
from backends.search.text import make_analyzer
from router.core import CompletionRequest, Message

DATA = ROOT.parent / "shared" / "data"
THRESHOLDS = [round(t * 0.05, 2) for t in range(21)]


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        sys.exit(f"{what} not found at {path}: pass its path (see ../shared/data/README.md)")
    return path


def normalize(text: str) -> str:
    """SQuAD-style answer normalisation: lowercase, no punctuation, no articles, single spaces."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def answer_hit(answer_text: str, golds: list[str]) -> bool:
    """Whether any gold answer appears (normalised, on word boundaries) in the answer text."""
    haystack = f" {normalize(answer_text)} "
    return any(g and f" {g} " in haystack for g in (normalize(x) for x in golds))


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def gate_curve(rows: list[dict[str, Any]], thresholds: list[float] | None = None) -> list[dict[str, float]]:
    """Coverage (share accepted) and precision (answer-hit rate among accepted) per threshold."""
    curve = []
    for threshold in THRESHOLDS if thresholds is None else thresholds:
        accepted = [r for r in rows if r["found"] and r["confidence"] >= threshold]
        hits = sum(r["hit"] for r in accepted)
        curve.append({
            "threshold": threshold,
            "coverage": round(len(accepted) / len(rows), 4) if rows else 0.0,
            "precision": round(hits / len(accepted), 4) if accepted else 1.0,
        })
    return curve


def _at(rows: list[dict[str, Any]], threshold: float) -> dict[str, float]:
    return gate_curve(rows, [threshold])[0]


def run_squad(squad_dir: Path, sample: int, seed: int, workdir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Index the SQuAD dev passages and ask the (sampled) questions."""
    passages = _jsonl(_require(squad_dir / "passages.jsonl", "SQuAD passages"))
    questions = _jsonl(_require(squad_dir / "questions.jsonl", "SQuAD questions"))
    if sample and sample < len(questions):
        questions = random.Random(seed).sample(questions, sample)
    index_dir = workdir / "squad"
    docs = [RawDocument(id=p["passage_id"], title=p["title"].replace("_", " "), text=p["text"], url=None,
                        source="squad") for p in passages]
    started = time.perf_counter()
    summary = ingest_documents(index_dir, docs)
    build_s = time.perf_counter() - started
    handle = SearchIndex(index_dir)
    index, searcher = handle.searcher()
    analyzer = make_analyzer()
    rows = []
    for q in questions:
        answer = compose(analyzer, index, searcher, q["question"], top_k=5)
        ranked: list[str] = []
        for hit in answer.hits:
            if hit.doc_id not in ranked:
                ranked.append(hit.doc_id)
        gold = q["passage_id"]
        rows.append({
            "title": q["title"], "features": features(answer), "r1": ranked[:1] == [gold], "r5": gold in ranked[:5], "found": answer.found,
            "hit": answer_hit(" ".join(answer.sentences), q["answers"]), "confidence": confidence(answer),
            "ctx": answer.context_coverage, "own": answer.sentence_coverage, "psg": answer.passage_coverage,
            "terms": len(answer.terms.terms), "rank": answer.best_hit,
            "s1": answer.hits[0].score if answer.hits else 0.0,
            "s2": answer.hits[1].score if len(answer.hits) > 1 else 0.0,
        })
    n = len(rows)
    default = _at(rows, DEFAULT_MIN_CONFIDENCE)
    # The gate's weights were fitted on the articles at even positions in sorted title order (gate.py);
    # the odd ones were never seen while fitting.
    titles = sorted({p["title"] for p in passages})
    held_out_titles = {t for i, t in enumerate(titles) if i % 2 == 1}
    held_out = [r for r in rows if r["title"] in held_out_titles]
    result = {
        "passages_indexed": summary.passages, "docs_indexed": summary.docs, "questions": n,
        "sampled": bool(sample and sample < len(_jsonl(squad_dir / "questions.jsonl"))), "seed": seed,
        "build_s": round(build_s, 2),
        "recall_at_1": round(sum(r["r1"] for r in rows) / n, 4),
        "recall_at_5": round(sum(r["r5"] for r in rows) / n, 4),
        "answer_hit_rate": round(sum(r["hit"] for r in rows) / n, 4),
        "gate_curve": gate_curve(rows),
        "gate_at_default": default,
        "held_out_gate_curve": gate_curve(held_out),
        "held_out_gate_at_default": _at(held_out, DEFAULT_MIN_CONFIDENCE),
        "held_out_questions": len(held_out),
    }
    return result, rows


def run_vital(vital: Path, nq: Path, nq_sample: int, seed: int, workdir: Path) -> dict[str, Any]:
    """Build the vital-articles index, then ask NQ-open questions against it through the backend."""
    index_dir = workdir / "vital"
    started = time.perf_counter()
    summary = ingest_paths(index_dir, [_require(vital, "vital-articles file")], text_field="text", progress=False)
    build_s = time.perf_counter() - started
    stats = index_stats(index_dir)
    questions = _jsonl(_require(nq, "NQ-open dev file"))
    if nq_sample and nq_sample < len(questions):
        questions = random.Random(seed).sample(questions, nq_sample)
    backend = TantivyBackend(tier="search", index_dir=index_dir, options=SearchOptions())
    for q in questions[:50]:  # warm-up: page cache and lazy structures
        backend.answer(CompletionRequest(messages=[Message("user", q["question"])]))
    latencies, cpu, accepted, hits = [], [], 0, 0
    nq_rows: list[dict[str, Any]] = []
    for q in questions:
        request = CompletionRequest(messages=[Message("user", q["question"])])
        started = time.perf_counter()
        completion = backend.answer(request)
        latencies.append((time.perf_counter() - started) * 1000)
        cpu.append((completion.cpu_seconds or 0.0) * 1000)
        hit = answer_hit(completion.text.split("\n\nSources:")[0], q["answer"])
        nq_rows.append({"found": bool(completion.sources), "confidence": completion.confidence or 0.0, "hit": hit})
        if completion.sufficient:
            accepted += 1
            hits += hit
    latencies.sort()
    return {
        "index": {"docs": summary.docs, "passages": summary.passages, "skipped": len(summary.skipped),
                  "build_s": round(build_s, 2), "size_bytes": stats["size_bytes"]},
        "nq_questions": len(questions),
        "nq_accepted_share": round(accepted / len(questions), 4),
        "nq_hit_rate_among_accepted": round(hits / accepted, 4) if accepted else None,
        "nq_gate_curve": gate_curve(nq_rows),
        "latency_ms_p50": round(statistics.median(latencies), 3),
        "latency_ms_p99": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 3),
        "cpu_ms_per_query_median": round(statistics.median(cpu), 3),
        "cpu_ms_per_query_mean": round(statistics.fmean(cpu), 3),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write bench/results/search.json."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--squad", type=Path, default=DATA / "squad_v1.1_dev")
    parser.add_argument("--vital", type=Path, default=DATA / "wiki_vital_articles_en" / "summaries_en-us.json")
    parser.add_argument("--nq", type=Path, default=DATA / "nq_open" / "NQ-open.dev.jsonl")
    parser.add_argument("--sample", type=int, default=0, help="SQuAD questions to sample (0 = all)")
    parser.add_argument("--nq-sample", type=int, default=0, help="NQ-open questions to sample (0 = all)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "search.json")
    parser.add_argument("--rows", type=Path, default=None, help="also write per-question SQuAD rows (JSONL)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="frugal-search-bench-") as tmp:
        squad, rows = run_squad(args.squad, args.sample, args.seed, Path(tmp))
        vital = run_vital(args.vital, args.nq, args.nq_sample, args.seed, Path(tmp))
    result = {
        "command": "python bench/search.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "default_min_confidence": DEFAULT_MIN_CONFIDENCE,
        "squad": squad,
        "vital_nq": vital,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.rows:
        args.rows.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(json.dumps({k: v for k, v in squad.items() if "curve" not in k}, indent=2))
    print(json.dumps(vital, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
