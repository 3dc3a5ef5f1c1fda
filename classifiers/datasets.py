"""Labelled requests for training and evaluation: our seed set plus public sets, mapped to tiers.

The public sets carry no tier labels; each loader below documents its mapping (docs/CLASSIFIER.md
gives the reasons). Every public source is capped (``cap`` rows, sampled with the training seed)
so no single set dominates, and the seed set is read with its reviewed overrides applied.
Rows are dicts: ``text``, ``tier``, ``source``, optional ``kind``/``lang``, and optional
``messages`` (a conversation; the classifier then sees its ``conversation_view``).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from router.core import TIERS
from router.core.errors import UnprocessableError

log = logging.getLogger(__name__)

Row = dict[str, Any]
DEFAULT_CAP = 300
OVERRIDES_FILE = "overrides.jsonl"
#: Our reviewed per-item tier labels of public sets that need a judgement (MT-Bench, Self-Instruct, Dolly).
LABELS_DIR = Path(__file__).resolve().parent / "data" / "labels"
#: Outcome labels measured by ``bench/outcomes.py``: per training row, the cheapest tier that was right.
OUTCOMES_FILE = LABELS_DIR / "outcomes.jsonl"


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:  # type: ignore[operator]
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, json.loads(line)


def _need(path: Path) -> Path:
    if not path.exists():
        raise UnprocessableError(
            f"data file not found: {path} (point --shared-data at the folder holding the public sets)"
        )
    return path


def load_seed(seed_dir: Path) -> tuple[list[Row], dict[str, int]]:
    """Our hand-written seed rows (``seed_*.jsonl``) with ``overrides.jsonl`` applied."""
    if not seed_dir.is_dir():
        raise UnprocessableError(f"seed folder not found: {seed_dir}")
    overrides: dict[str, dict[str, Any]] = {}
    if (seed_dir / OVERRIDES_FILE).exists():
        for _, item in _jsonl(seed_dir / OVERRIDES_FILE):
            overrides[item["text"].strip()] = item
    rows: list[Row] = []
    stats = {"read": 0, "invalid": 0, "dropped": 0, "relabelled": 0, "duplicates": 0}
    seen: set[str] = set()
    for path in sorted(seed_dir.glob("seed_*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                stats["read"] += 1
                try:
                    item = json.loads(line)
                    text, tier = str(item["text"]).strip(), item["tier"]
                except (ValueError, KeyError, TypeError):
                    stats["invalid"] += 1
                    log.warning("skipping malformed seed line %s:%d", path.name, number)
                    continue
                override = overrides.get(text)
                if override is not None and override.get("drop"):
                    stats["dropped"] += 1
                    continue
                if override is not None and override.get("tier"):
                    tier, stats["relabelled"] = override["tier"], stats["relabelled"] + 1
                if tier not in TIERS or not text:
                    stats["invalid"] += 1
                    log.warning("skipping seed line %s:%d with tier %r", path.name, number, tier)
                    continue
                if text in seen:
                    stats["duplicates"] += 1
                    continue
                seen.add(text)
                rows.append({"text": text, "tier": tier, "source": "seed", "kind": item.get("kind"),
                             "lang": item.get("lang", "en")})
    return rows, stats


def _squad(folder: Path) -> Iterator[Row]:
    """SQuAD v1.1 dev questions → search (a reference passage states each answer)."""
    for _, item in _jsonl(_need(folder / "squad_v1.1_dev" / "questions.jsonl")):
        yield {"text": item["question"].strip(), "tier": "search"}


def _nq(folder: Path) -> Iterator[Row]:
    """Natural Questions open → search (short factual questions as people type them)."""
    for _, item in _jsonl(_need(folder / "nq_open" / "NQ-open.dev.jsonl")):
        yield {"text": item["question"].strip(), "tier": "search"}


def _gsm8k(folder: Path) -> Iterator[Row]:
    """GSM8K word problems → large (several arithmetic reasoning steps)."""
    for _, item in _jsonl(_need(folder / "gsm8k" / "train.jsonl")):
        yield {"text": item["question"].strip(), "tier": "large"}


def _humaneval(folder: Path) -> Iterator[Row]:
    """HumanEval function prompts → large (code writing)."""
    for _, item in _jsonl(_need(folder / "humaneval" / "HumanEval.jsonl.gz")):
        yield {"text": item["prompt"].strip(), "tier": "large"}


def _reviewed_labels(name: str, key: Callable[[dict[str, Any]], str]) -> dict[str, dict[str, Any]]:
    """Our per-item tier labels of a public set (``classifiers/data/labels/<name>.jsonl``), by item key."""
    return {key(item): item for _, item in _jsonl(LABELS_DIR / f"{name}.jsonl")}


def _mt_bench_key(item: dict[str, Any]) -> str:
    return f"{item['question_id']}:{item['turn']}"


def _mt_bench(folder: Path) -> Iterator[Row]:
    """MT-Bench → each turn by its reviewed label; the second turn also as a follow-up conversation.

    Most turns are large (reasoning, maths, code, long or constrained writing, expert explanation);
    extraction into a format, plain rewrites of the previous answer and persona chit-chat are small.
    A question without a reviewed label is left out, never guessed.
    """
    labels = _reviewed_labels("mt_bench", _mt_bench_key)
    for _, item in _jsonl(_need(folder / "mt_bench" / "question.jsonl")):
        first, second = item["turns"][0], item["turns"][1]
        kind = item["category"]
        one = labels.get(f"{item.get('question_id')}:1")
        two = labels.get(f"{item.get('question_id')}:2")
        if one is not None:
            yield {"text": first, "tier": one["tier"], "kind": kind}
        if two is not None:
            yield {"text": second, "tier": two["tier"], "kind": f"{kind}_turn2", "messages": [
                {"role": "user", "content": first}, {"role": "assistant", "content": "(answer)"},
                {"role": "user", "content": second}]}


def _self_instruct(folder: Path) -> Iterator[Row]:
    """Self-Instruct user-oriented → each instruction by its reviewed label, with its input appended.

    Small: a transformation of the supplied input or a short, low-stakes generation (the bulk of the
    set). Large: code, maths, puzzles, planning, comparison, analysis, stories and expert generation.
    An instruction without a reviewed label is left out, never guessed.
    """
    labels = _reviewed_labels("self_instruct", lambda item: str(item["id"]))
    path = _need(folder / "self_instruct_user_oriented" / "user_oriented_instructions.jsonl")
    for _, item in _jsonl(path):
        label = labels.get(str(item.get("id")))
        if label is None:
            continue
        instruction = item["instruction"].strip()
        supplied = (item.get("instances") or [{}])[0].get("input", "").strip()
        text = f"{instruction}\n\n{supplied}" if supplied else instruction
        yield {"text": text, "tier": label["tier"], "kind": item.get("motivation_app")}


_FACT_START = re.compile(
    r"^(who|when|where|which|what (?:is|was|are|were) the (?:name|capital|population|date|year|height|"
    r"length|largest|smallest|tallest|first|last)|what year|how (?:many|much|old|tall|long|far|big))\b",
    re.IGNORECASE,
)
_NOT_FACT = re.compile(
    r"\b(you|your|i|my|we|our|should|best|better|difference|compare|why|opinion|think|recommend|"
    r"ideas?|list|explain|describe|following|these|below|above|passage|text|paragraph)\b",
    re.IGNORECASE,
)
_CLASSIFY = re.compile(r"^(classify|categori[sz]e|identify which|tell me (?:whether|which|if) (?:each|these))\b",
                       re.IGNORECASE)


DOLLY_FILE = Path("dolly_partial_no_category") / "dolly_first6400_instruction_response.jsonl"
#: How many Dolly rows the two rules leave out were sampled (seed 0) for per-item review.
DOLLY_REVIEW_SAMPLE = 400


def _dolly_rule(instruction: str, response: str) -> str | None:
    """The tier of Dolly's two narrow, checkable subsets, or None for a row they leave out."""
    if _CLASSIFY.match(instruction):
        return "small"
    if (_FACT_START.match(instruction) and len(instruction.split()) <= 20 and "\n" not in instruction
            and not _NOT_FACT.search(instruction) and len(response.split()) <= 40):
        return "search"
    return None


def _dolly(folder: Path) -> Iterator[Row]:
    """Dolly (no categories) → only two narrow, checkable subsets; the rest is left to ``dolly_reviewed``.

    search: a short wh-question about a fact (who/when/where/which/how many…, at most 20 words, no
    opinion, comparison, list or reference to a given text) whose human answer is at most 40 words.
    small: "Classify / categorise / identify which …" over items listed in the request itself.
    """
    for _, item in _jsonl(_need(folder / DOLLY_FILE)):
        instruction = item["instruction"].strip()
        tier = _dolly_rule(instruction, item.get("response", ""))
        if tier is not None:
            yield {"text": instruction, "tier": tier, "kind": "classify" if tier == "small" else "fact"}


def dolly_review_sample(folder: Path, n: int = DOLLY_REVIEW_SAMPLE, seed: int = 0) -> list[int]:
    """Ids of the Dolly rows drawn for per-item review: ``n`` whose instruction the two rules never take."""
    items = [item for _, item in _jsonl(_need(folder / DOLLY_FILE))]
    taken = {row["text"] for row in _dolly(folder)}
    left_out = [item["id"] for item in items if item["instruction"].strip() not in taken]
    return sorted(random.Random(seed).sample(left_out, n))


def _dolly_reviewed(folder: Path) -> Iterator[Row]:
    """Dolly rows outside the two rules → each by its reviewed label (the sample ``dolly_review_sample`` draws).

    The labels were given per item, blind to any classifier output, against DESIGN's definitions.
    A row whose request points at a supplied text the set no longer carries is labelled null and
    left out, as is every row without a label.
    """
    labels = _reviewed_labels("dolly", lambda item: str(item["id"]))
    for _, item in _jsonl(_need(folder / DOLLY_FILE)):
        label = labels.get(str(item.get("id")))
        instruction = item["instruction"].strip()
        if label is None or label["tier"] is None:
            continue
        yield {"text": instruction, "tier": label["tier"], "kind": "reviewed"}


#: The dataset a source's rows come from; the cross-source benchmark holds out a whole dataset.
DATASET_OF = {"dolly_reviewed": "dolly"}


def dataset_of(source: str) -> str:
    """The dataset a source (a loader name) reads: sources of one dataset are held out together."""
    return DATASET_OF.get(source, source)


#: Public sources by name: a loader documenting its tier mapping.
PUBLIC_SOURCES: dict[str, Callable[[Path], Iterator[Row]]] = {
    "squad": _squad,
    "nq_open": _nq,
    "gsm8k": _gsm8k,
    "humaneval": _humaneval,
    "mt_bench": _mt_bench,
    "self_instruct": _self_instruct,
    "dolly": _dolly,
    "dolly_reviewed": _dolly_reviewed,
}


def load_public(
    shared_data_dir: Path, *, seed: int = 0, cap: int = DEFAULT_CAP, sources: list[str] | None = None
) -> list[Row]:
    """Rows of the public sets, at most ``cap`` per source and tier, sampled reproducibly."""
    if not shared_data_dir.is_dir():
        raise UnprocessableError(f"shared data folder not found: {shared_data_dir}")
    names = sources if sources is not None else list(PUBLIC_SOURCES)
    unknown = sorted(set(names) - set(PUBLIC_SOURCES))
    if unknown:
        raise UnprocessableError(f"unknown public sources {unknown}; valid: {sorted(PUBLIC_SOURCES)}")
    rows: list[Row] = []
    for name in names:
        rng = random.Random(f"{seed}:{name}")
        by_tier: dict[str, list[Row]] = {}
        seen: set[str] = set()
        for row in PUBLIC_SOURCES[name](shared_data_dir):
            if row["text"] and row["text"] not in seen:
                seen.add(row["text"])
                by_tier.setdefault(row["tier"], []).append({**row, "source": name})
        for tier_rows in by_tier.values():
            rows.extend(rng.sample(tier_rows, cap) if len(tier_rows) > cap else tier_rows)
    return rows


def text_key(text: str) -> str:
    """The key an outcome record joins its training row by: sha256 of the row's text, 16 hex digits."""
    return hashlib.sha256(text.strip().encode("utf-8")).hexdigest()[:16]


def training_label(record: dict[str, Any]) -> str | None:
    """The tier a measured prompt should be routed to first, from its ``bench/outcomes.py`` record.

    For a request we judged a model's job (``small`` or ``large``): ``small`` when the small tier's gate accepted
    a right answer, else ``large``. A lookup (judgement ``search``) keeps ``search``: whether the index holds the
    answer, and whether the gate takes a near miss, depend on the operator's index, not on the wording the
    classifier sees, and a rejection escalates at no loss of quality. Trained on our benchmark index, "search
    failed here" taught the classifier that "What is the capital of Japan?" needs the large tier.
    """
    tier = record.get("outcome_tier")
    judged = record.get("judgement_tier")
    if not record.get("judged", True) or tier not in TIERS or judged not in TIERS:
        return None
    if judged == "search":
        return "search"
    small = record.get("small") or {}
    return "small" if small.get("accepted") and small.get("correct") else "large"


def read_outcomes(path: Path) -> list[dict[str, Any]]:
    """The judged records of a ``bench/outcomes.py`` file: source, text key and both cheap tiers' verdicts.

    Records that were not judged (no reference could tell) or lack those fields are left out, and logged.
    """
    if not path.exists():
        raise UnprocessableError(f"outcomes file not found: {path}")
    try:
        records = [item for _, item in _jsonl(path)]
    except ValueError as exc:
        raise UnprocessableError(f"{path}: not JSON lines ({exc})") from exc
    judged = [r for r in records if isinstance(r, dict) and r.get("judged", True) and r.get("source")
              and r.get("key") and isinstance(r.get("search"), dict) and isinstance(r.get("small"), dict)]
    if len(judged) < len(records):
        log.info("%s: %d records without a judged tier keep their judgement labels", path.name,
                 len(records) - len(judged))
    return judged


def load_outcomes(path: Path) -> dict[tuple[str, str], str]:
    """Training labels by (source, text key) from a ``bench/outcomes.py`` file (``training_label``)."""
    labels = {(str(r["source"]), str(r["key"])): training_label(r) for r in read_outcomes(path)}
    return {key: tier for key, tier in labels.items() if tier is not None}


def outcome_labels_by_text(path: Path) -> dict[str, str]:
    """Training labels by text key alone (for labelled files without a source, e.g. ``frugal calibrate --data``)."""
    return {key: tier for (_, key), tier in load_outcomes(path).items()}


def apply_outcomes(rows: list[Row], outcomes: dict[tuple[str, str], str]) -> int:
    """Relabel rows that have an outcome (their judgement label is kept as ``judgement_tier``); how many changed."""
    changed = 0
    for row in rows:
        tier = outcomes.get((row.get("source", ""), text_key(row["text"])))
        if tier is None:
            continue
        row["judgement_tier"], row["label_from"] = row["tier"], "outcome"
        changed += tier != row["tier"]
        row["tier"] = tier
    return changed


def summarise(rows: list[Row]) -> dict[str, dict[str, int]]:
    """Counts of rows per source and tier (for the manifest's data summary)."""
    summary: dict[str, dict[str, int]] = {}
    for row in rows:
        per_source = summary.setdefault(row.get("source", "?"), {})
        per_source[row["tier"]] = per_source.get(row["tier"], 0) + 1
    return summary
