"""Does the small tier use the passages it is handed? A grounding score measured against SQuAD answers.

When the search gate rejects an answer, the small model receives the top passages (``request.context``)
and answers from them, or is supposed to. This benchmark takes SQuAD v1.1 dev questions that the gate
rejects at the default threshold, runs the real small tier (SmolLM2-135M in process, temperature 0,
``--max-tokens``) with the same top-5 passages the router would hand on, and records for each answer:

- ``hit``: a gold answer appears in it (SQuAD normalisation, as in ``bench/search.py``);
- ``search_hit``: the same for the search tier's own (rejected) composed answer, for comparison;
- ``grounding``: the share of the answer's content words (not
  stop words, not words of the question) that occur in the passages.

It reports the hit rate overall and per grounding band, and for each candidate threshold the share of
answers that would escalate and the hit rates of the kept and escalated answers. A useful threshold
escalates answers that are mostly wrong and keeps answers that are more often right.

    .venv/bin/python bench/grounding.py [--questions 150] [--seed 0] [--max-tokens 64] [--model FILE.gguf]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    """Lower-case word tokens."""
    return WORD.findall(text.lower())


STOP_WORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have having
he her here hers herself him himself his how i if in into is it its itself just me more most my myself no
nor not now of off on once only or other our ours ourselves out over own same she should so some such than
that the their theirs them themselves then there these they this those through to too under until up very
was we were what when where which while who whom why will with would you your yours yourself yourselves
one two many much may might must shall yes well like also however therefore thus known called named
""".split())  # noqa: SIM905 - a readable block of words


def content_words(text: str) -> list[str]:
    """Words that carry content: not stop words, three letters or more, or numbers."""
    return [w for w in words(text) if (len(w) >= 3 or w.isdigit()) and w not in STOP_WORDS]


def grounding(question: str, answer: str, passages: list[str]) -> float:
    """The share of the answer's content words (not stop words, not the question's) found in ``passages``.

    1.0 when the answer adds no content words of its own. A model that answers from the passages it
    was handed scores high; one that ignores them and invents scores low.
    """
    asked = set(words(question))
    added = [w for w in content_words(answer) if w not in asked]
    if not added:
        return 1.0
    available = {w for passage in passages for w in words(passage)}
    return sum(w in available for w in added) / len(added)


THRESHOLDS = [0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]


def curve(rows: list[dict[str, Any]]) -> list[dict[str, float]]:
    """Per threshold: share escalated, hit rate of the kept answers and of the escalated ones."""
    out = []
    for threshold in THRESHOLDS:
        kept = [r for r in rows if r["grounding"] >= threshold]
        dropped = [r for r in rows if r["grounding"] < threshold]
        out.append({
            "threshold": threshold,
            "escalated_share": round(len(dropped) / len(rows), 4),
            "hit_rate_kept": round(sum(r["hit"] for r in kept) / len(kept), 4) if kept else None,
            "hit_rate_escalated": round(sum(r["hit"] for r in dropped) / len(dropped), 4) if dropped else None,
        })
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Index SQuAD, pick gate-rejected questions, ask the small tier with passages, score the answers."""
    from search import _jsonl, answer_hit  # bench/search.py

    from backends.config import TierConfig
    from backends.llamacpp import build
    from backends.search.compose import compose
    from backends.search.gate import DEFAULT_MIN_CONFIDENCE, confidence
    from backends.search.index import SearchIndex
    from backends.search.ingest import ingest_documents
    from backends.search.readers import RawDocument
    from backends.search.text import make_analyzer
    from router.core import CompletionRequest, Message

    passages = _jsonl(args.squad / "passages.jsonl")
    questions = _jsonl(args.squad / "questions.jsonl")
    random.Random(args.seed).shuffle(questions)
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(tmp) / "squad"
        ingest_documents(index_dir, [RawDocument(id=p["passage_id"], title=p["title"].replace("_", " "), text=p["text"],
                                                 url=None, source="squad") for p in passages])
        index, searcher = SearchIndex(index_dir).searcher()
        analyzer = make_analyzer()
        small = build(TierConfig(backend="llamacpp", model=args.model), tier="small",  # type: ignore[arg-type]
                      data_dir=Path(tmp))
        rows: list[dict[str, Any]] = []
        started = time.perf_counter()
        try:
            for q in questions:
                if len(rows) >= args.questions:
                    break
                answer = compose(analyzer, index, searcher, q["question"], top_k=5)
                if not answer.found or confidence(answer) >= DEFAULT_MIN_CONFIDENCE:
                    continue
                context = answer.passages()
                request = CompletionRequest(messages=[Message("user", q["question"])], context=context,
                                            max_tokens=args.max_tokens, temperature=0.0)
                completion = await small.complete(request)
                kept = completion.passages or context
                rows.append({
                    "question": q["question"], "answer": completion.text, "golds": q["answers"],
                    "hit": answer_hit(completion.text, q["answers"]),
                    "search_hit": answer_hit(" ".join(answer.sentences), q["answers"]),
                    "gold_in_passages": any(answer_hit(p.text, q["answers"]) for p in kept),
                    "grounding": round(grounding(q["question"], completion.text, [p.text for p in kept]), 4),
                    "sufficient": completion.sufficient,
                })
        finally:
            await small.aclose()
        wall = time.perf_counter() - started
    bands = {}
    for low, high in ((0.0, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.01)):
        band = [r for r in rows if low <= r["grounding"] < high]
        bands[f"{low:.1f}-{min(high, 1.0):.1f}"] = {
            "n": len(band), "hit_rate": round(sum(r["hit"] for r in band) / len(band), 4) if band else None}
    return {
        "command": "python bench/grounding.py " + " ".join(sys.argv[1:]),
        "settings": {"model": args.model or "SmolLM2-135M-Instruct Q4_1 (default)", "questions": args.questions, "seed": args.seed, "max_tokens": args.max_tokens,
                     "gate_threshold": DEFAULT_MIN_CONFIDENCE, "top_k": 5},
        "answers": len(rows),
        "hit_rate": round(sum(r["hit"] for r in rows) / len(rows), 4),
        "search_answer_hit_rate": round(sum(r["search_hit"] for r in rows) / len(rows), 4),
        "judged_sufficient_share": round(sum(r["sufficient"] for r in rows) / len(rows), 4),
        "gold_in_passages_share": round(sum(r["gold_in_passages"] for r in rows) / len(rows), 4),
        "median_grounding": statistics.median(r["grounding"] for r in rows),
        "bands": bands,
        "curve": curve(rows),
        "wall_s": round(wall, 1),
        "rows": rows,
    }


def main() -> int:
    """Run the benchmark and write its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, default=ROOT.parent / "shared/data/squad_v1.1_dev")
    parser.add_argument("--questions", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--model", default=None, help="a GGUF file for the small tier (default: SmolLM2-135M)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/grounding.json")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
