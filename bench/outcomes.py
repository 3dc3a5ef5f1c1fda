"""Outcome labels: for each training prompt that has a reference, which tier's answer was actually right.

The classifier's public training rows (``classifiers.datasets.load_public`` with the shipped manifest's seed
and cap, so the texts are exactly the rows it trains on) are sampled per source, and each prompt goes through
the tiers as configured by default, in process:

1. the **search tier** (tantivy over the SQuAD dev passages and the Wikipedia vital articles, as
   ``bench/mixed.py`` indexes them, the shipped gate and its default threshold);
2. the **small tier** (the shipped llama.cpp model, temperature 0, asked the prompt alone, as when the
   classifier routes a request to it first), with its own self-check gate. It is asked even when search was
   sufficient, so that a routing policy can be scored on every prompt (``classifiers.evaluation``).

A tier is **sufficient** for a prompt when its gate accepted the answer *and* the answer is right; an answer
its gate rejects would have escalated anyway, and an accepted wrong answer is the failure a cheap tier must
not be credited with. The **outcome label** is the cheapest sufficient tier, and ``large`` when none was: the
large tier is *assumed* sufficient (there is no large model offline to check it against).

How an answer is judged (``judge``), per source:

- SQuAD, NQ-open: a gold answer appears in it (SQuAD normalisation, ``bench/search.py``);
- GSM8K: its last number equals the final answer; HumanEval: the tests pass in a fresh interpreter, without
  network when ``unshare -n`` works, with a timeout (``bench/mixed.py``);
- Self-Instruct (the instance's output) and Dolly (the human response): a conservative reference judge — the
  answer is non-empty, not a refusal and in the prompt's script; a reference of at most
  ``SHORT_REFERENCE_WORDS`` words must appear in it; a longer one must reach token F1 ``REFERENCE_F1``
  (SQuAD normalisation) over the words the prompt does not already hold, so that echoing the prompt earns
  nothing. A right answer phrased far from the reference counts as wrong: the judge errs towards ``large``.
  A reference whose words are the prompt's own (a choice among listed options, a list sorted or classified)
  cannot tell right from wrong this way: such prompts are **not judged** (``judged: false``) and keep their
  judgement label.
- MT-Bench and our seed set carry no references: not run; their judgement labels stand.

Writes ``--out`` (JSONL, one record per prompt: source, ``key`` = sha256 of the training text, judgement
label, outcome label, each tier's acceptance and verdict; no prompt text) and a summary JSON beside it.
``--resume`` skips prompts already in ``--out`` so a long run can be continued.

    .venv/bin/python bench/outcomes.py [--data ../shared/data] [--per-source 150] [--seed 0] [--resume]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from mixed import code_correct, factual_correct, maths_correct, network_isolation, read_jsonl, require

from classifiers.datasets import text_key

DATA = ROOT.parent / "shared" / "data"
#: Sources with references, and how their answers are judged.
JUDGES = {"squad": "factual", "nq_open": "factual", "gsm8k": "maths", "humaneval": "code",
          "self_instruct": "reference", "dolly": "reference", "dolly_reviewed": "reference"}
#: ``max_tokens`` the small tier is given per judge (a client asking for these tasks would allow as much).
MAX_TOKENS = {"factual": 48, "maths": 200, "code": 256, "reference": 160}
REFERENCE_F1 = 0.5
SHORT_REFERENCE_WORDS = 5
REFUSAL = re.compile(r"\b(i'?m sorry|i am sorry|i cannot|i can'?t|as an ai|i am unable|i'?m unable)\b", re.IGNORECASE)
LATIN = re.compile(r"[A-Za-z]")
LETTER = re.compile(r"[^\W\d_]")


def references(data: Path) -> dict[str, dict[str, Any]]:
    """Per source, training text → what its answer is judged against (the prompt to send, the reference)."""
    refs: dict[str, dict[str, Any]] = {name: {} for name in JUDGES}
    for q in read_jsonl(require(data / "squad_v1.1_dev/questions.jsonl", "SQuAD questions")):
        refs["squad"].setdefault(q["question"].strip(), []).extend(q["answers"])
    for q in read_jsonl(require(data / "nq_open/NQ-open.dev.jsonl", "NQ-open dev")):
        refs["nq_open"][q["question"].strip()] = q["answer"]
    for q in read_jsonl(require(data / "gsm8k/train.jsonl", "GSM8K train")):
        refs["gsm8k"][q["question"].strip()] = q["answer"].split("####")[-1].strip().replace(",", "")
    for q in read_jsonl(require(data / "humaneval/HumanEval.jsonl.gz", "HumanEval")):
        refs["humaneval"][q["prompt"].strip()] = {"prompt": q["prompt"], "test": q["test"],
                                                  "entry_point": q["entry_point"]}
    path = data / "self_instruct_user_oriented/user_oriented_instructions.jsonl"
    for q in read_jsonl(require(path, "Self-Instruct user-oriented")):
        instance = (q.get("instances") or [{}])[0]
        supplied = instance.get("input", "").strip()
        text = f"{q['instruction'].strip()}\n\n{supplied}" if supplied else q["instruction"].strip()
        refs["self_instruct"][text] = instance.get("output", "")
    path = data / "dolly_partial_no_category/dolly_first6400_instruction_response.jsonl"
    for q in read_jsonl(require(path, "Dolly")):
        refs["dolly"][q["instruction"].strip()] = q.get("response", "")
    refs["dolly_reviewed"] = refs["dolly"]
    return refs


def prompt_for(source: str, text: str, reference: Any) -> str:
    """What is sent: the training text, except HumanEval's stub, asked as mixed.py asks it."""
    if source == "humaneval":
        return f"Complete this Python function.\n\n```python\n{reference['prompt']}```"
    return text


def _tokens(text: str) -> list[str]:
    from search import normalize

    return normalize(text).split()


def token_f1(answer: str, reference: str) -> float:
    """SQuAD-style token F1 between an answer and a reference."""
    got, want = _tokens(answer), _tokens(reference)
    common = sum((Counter(got) & Counter(want)).values())
    if not got or not want or common == 0:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


def same_script(prompt: str, answer: str) -> bool:
    """Whether the answer is written in the prompt's script (Latin or not), judged by their letters."""
    def latin_share(text: str) -> float:
        letters = LETTER.findall(text)
        return sum(1 for ch in letters if LATIN.match(ch)) / len(letters) if letters else 1.0

    return (latin_share(prompt) >= 0.5) == (latin_share(answer) >= 0.5)


def reference_judgeable(prompt: str, reference: Any) -> bool:
    """Whether a reference can tell a right answer from a wrong one by the words it shares with it.

    Not when the reference's words are the prompt's own (a choice among options the prompt lists, a list
    sorted or classified): an answer that merely repeats them would match. A short reference needs at least
    one word the prompt lacks, a longer one at least three.
    """
    words = _tokens(str(reference))
    novel = {t for t in words if t not in set(_tokens(prompt))}
    return bool(words) and len(novel) >= (1 if len(words) <= SHORT_REFERENCE_WORDS else 3)


def reference_correct(prompt: str, answer: str, reference: str) -> bool:
    """The conservative judge for transformations and free answers (see the module docstring)."""
    body = answer.split("\n\nSources:")[0].strip()
    if not body or REFUSAL.search(body) or not same_script(prompt, body):
        return False
    words, asked = _tokens(reference), set(_tokens(prompt))
    if len(words) <= SHORT_REFERENCE_WORDS:
        return f" {' '.join(words)} " in f" {' '.join(_tokens(body))} "
    novel = [t for t in words if t not in asked]
    return token_f1(" ".join(t for t in _tokens(body) if t not in asked), " ".join(novel)) >= REFERENCE_F1


def judgeable(source: str, prompt: str, reference: Any) -> bool:
    """Whether answers to this prompt can be judged at all (references that cannot tell are left unjudged)."""
    return JUDGES[source] != "reference" or reference_judgeable(prompt, reference)


def judge(source: str, prompt: str, answer: str, reference: Any, *, isolated: bool) -> bool:
    """Whether ``answer`` is right for a prompt of ``source``."""
    kind = JUDGES[source]
    if kind == "factual":
        return factual_correct(answer, reference)
    if kind == "maths":
        return maths_correct(answer, reference)
    if kind == "code":
        return code_correct(answer, reference, isolated=isolated)
    return reference_correct(prompt, answer, reference)


def training_items(data: Path, per_source: int, seed: int) -> list[dict[str, Any]]:
    """The shipped classifier's public training rows with a reference, ``per_source`` of each, shuffled together."""
    from classifiers.config import shipped_model_dir
    from classifiers.datasets import load_public
    from classifiers.model import read_manifest

    manifest = read_manifest(shipped_model_dir())
    rows = load_public(data, seed=int(manifest["seed"]), cap=int(manifest["data"]["cap"]),
                       sources=list(JUDGES))
    refs = references(data)
    items: list[dict[str, Any]] = []
    for source in JUDGES:
        mine = [r for r in rows if r["source"] == source and r["text"] in refs[source]]
        for row in random.Random(f"{seed}:{source}").sample(mine, min(per_source, len(mine))):
            reference = refs[source][row["text"]]
            items.append({"source": source, "text": row["text"], "tier": row["tier"], "reference": reference,
                          "prompt": prompt_for(source, row["text"], reference)})
    random.Random(seed).shuffle(items)
    return items


def build_search(data: Path, workdir: Path) -> Any:
    """The search tier over SQuAD's passages and the vital articles, with the shipped gate."""
    from backends.search.backend import TantivyBackend
    from backends.search.ingest import ingest_paths

    paths = [require(data / "squad_v1.1_dev/passages.jsonl", "SQuAD passages"),
             require(data / "wiki_vital_articles_en/summaries_en-us.json", "vital articles")]
    ingest_paths(workdir / "index", paths, progress=False)
    return TantivyBackend(tier="search", index_dir=workdir / "index")


async def label(items: list[dict[str, Any]], out: Path, data: Path, model: str | None,
                answers: Path | None = None) -> None:
    """Run every item through search and small; append a record each."""
    from backends.config import TierConfig
    from backends.llamacpp import build
    from router.core import CompletionRequest, Message

    isolated = network_isolation()
    with tempfile.TemporaryDirectory(prefix="frugal-outcomes-") as tmp:
        search = build_search(data, Path(tmp))
        small = build(TierConfig(backend="llamacpp", model=model), tier="small",  # type: ignore[arg-type]
                      data_dir=Path(tmp))
        started = time.perf_counter()
        try:
            with out.open("a", encoding="utf-8") as sink:
                for number, item in enumerate(items, start=1):
                    kind = JUDGES[item["source"]]
                    if not judgeable(item["source"], item["prompt"], item["reference"]):
                        sink.write(json.dumps({"source": item["source"], "key": text_key(item["text"]),
                                               "judged": False, "judge": kind, "judgement_tier": item["tier"],
                                               "outcome_tier": item["tier"], "search": None, "small": None},
                                              sort_keys=True) + "\n")
                        continue
                    request = CompletionRequest(messages=[Message("user", item["prompt"])],
                                                max_tokens=MAX_TOKENS[kind], temperature=0.0)
                    found = search.answer(request)
                    searched = {"accepted": bool(found.sufficient), "confidence": round(found.confidence or 0.0, 4),
                                "correct": judge(item["source"], item["prompt"], found.text, item["reference"],
                                                 isolated=isolated)}
                    record: dict[str, Any] = {
                        "source": item["source"], "key": text_key(item["text"]), "judged": True,
                        "judge": kind, "judgement_tier": item["tier"], "search": searched, "small": None}
                    answered = await small.complete(request)
                    record["small"] = {
                        "accepted": bool(answered.sufficient), "confidence": round(answered.confidence or 0.0, 4),
                        "correct": judge(item["source"], item["prompt"], answered.text, item["reference"],
                                         isolated=isolated),
                        "completion_tokens": answered.completion_tokens}
                    record["outcome_tier"] = outcome_tier(record)
                    if answers is not None:
                        with answers.open("a", encoding="utf-8") as texts:
                            texts.write(json.dumps({"key": record["key"], "prompt": item["prompt"],
                                                    "reference": item["reference"], "search": found.text,
                                                    "small": answered.text}, default=str) + "\n")
                    sink.write(json.dumps(record, sort_keys=True) + "\n")
                    sink.flush()
                    print(f"[outcomes] {number}/{len(items)} {item['source']:<14} {item['tier']:>6} -> "
                          f"{record['outcome_tier']:<6} {time.perf_counter() - started:.0f}s",
                          file=sys.stderr, flush=True)
        finally:
            await small.aclose()


def outcome_tier(record: dict[str, Any]) -> str:
    """The cheapest tier whose gate accepted a right answer; ``large`` (assumed sufficient) when none did."""
    for tier in ("search", "small"):
        result = record.get(tier)
        if result is not None and result["accepted"] and result["correct"]:
            return tier
    return "large"


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per source: how many prompts, judgement vs outcome labels, and what each tier got right."""
    summary: dict[str, Any] = {}
    for source in sorted({r["source"] for r in records}):
        every = [r for r in records if r["source"] == source]
        mine = [r for r in every if r["judged"]]
        smalls = [r["small"] for r in mine]
        summary[source] = {
            "prompts": len(every),
            "judged": len(mine),
            "judgement": dict(Counter(r["judgement_tier"] for r in mine)),
            "outcome": dict(Counter(r["outcome_tier"] for r in mine)),
            "changed": sum(r["judgement_tier"] != r["outcome_tier"] for r in mine),
            "search_accepted": sum(r["search"]["accepted"] for r in mine),
            "search_accepted_wrong": sum(r["search"]["accepted"] and not r["search"]["correct"] for r in mine),
            "small_correct": sum(s["correct"] for s in smalls),
            "small_accepted": sum(s["accepted"] for s in smalls),
            "small_accepted_wrong": sum(s["accepted"] and not s["correct"] for s in smalls),
        }
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--per-source", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=None, help="a GGUF file for the small tier (default: the shipped one)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "outcomes.jsonl")
    parser.add_argument("--resume", action="store_true", help="keep --out and skip the prompts it already holds")
    parser.add_argument("--answers", type=Path, default=None,
                        help="also append prompts, references and both answers here, for review (not committed)")
    args = parser.parse_args()
    items = training_items(args.data, args.per_source, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.resume and args.out.exists():
        done = {(r["source"], r["key"]) for r in read_jsonl(args.out)}
        items = [i for i in items if (i["source"], text_key(i["text"])) not in done]
    else:
        args.out.write_text("", encoding="utf-8")
    asyncio.run(label(items, args.out, args.data, args.model, args.answers))
    records = read_jsonl(args.out)
    result = {"command": "python bench/outcomes.py " + " ".join(sys.argv[1:]), "prompts": len(records),
              "reference_f1": REFERENCE_F1, "per_source": summarise(records)}
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
