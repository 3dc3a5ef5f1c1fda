"""bench/outcomes.py: its conservative judge, and one real run through the search tier and the small model."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from outcomes import (  # bench/outcomes.py
    label,
    outcome_tier,
    reference_correct,
    reference_judgeable,
    token_f1,
)

from classifiers.datasets import text_key


def test_token_f1() -> None:
    assert token_f1("The cat sat", "the cat sat") == 1.0
    assert token_f1("a dog", "the cat") == 0.0
    assert token_f1("cat sat on mat", "cat sat") == pytest.approx(2 * 0.5 * 1.0 / 1.5)


@pytest.mark.parametrize(("prompt", "reference", "judgeable"), [
    ("Who painted The Death of Socrates?", "Jacques Louis David", True),
    ("Is this email spam or not? Dermatologists don't like her!", "Spam", False),  # one of the options given
    ("Classify as fruit or vegetable: apple, leek", "apple fruit, leek vegetable", False),
    ("Write a haiku about rain.", "Soft rain on the roof / the garden drinks slowly / grey light, green silence", True),
    ("Summarise: the meeting moved to Friday.", "", False),
])
def test_a_reference_made_of_the_prompts_own_words_is_not_judged(prompt: str, reference: str, judgeable: bool) -> None:
    assert reference_judgeable(prompt, reference) is judgeable


def test_the_reference_judge_is_conservative() -> None:
    ask = "The Death of Socrates was painted by whom?"
    assert reference_correct(ask, "It was painted by Jacques Louis David in 1787.", "Jacques Louis David")
    assert not reference_correct(ask, "By the Italian artist Alessandro Bianchi.", "Jacques Louis David")
    assert not reference_correct(ask, "I'm sorry, I cannot help with that. Jacques Louis David", "Jacques Louis David")
    assert not reference_correct(ask, "ジャック＝ルイ・ダヴィッド", "Jacques Louis David")  # not the prompt's script
    prompt = "Give three tips for sleeping better."
    reference = "Keep a regular schedule, avoid caffeine late in the day, and keep the bedroom dark and cool."
    assert reference_correct(prompt, "Keep a regular schedule; avoid caffeine late in the day; keep your bedroom dark.",
                             reference)
    assert not reference_correct(prompt, "Sleeping better: three tips for sleeping better are tips.", reference)


def test_the_outcome_is_the_cheapest_tier_whose_gate_accepted_a_right_answer() -> None:
    def rec(search: tuple[bool, bool], small: tuple[bool, bool]) -> dict:
        return {"search": {"accepted": search[0], "correct": search[1]},
                "small": {"accepted": small[0], "correct": small[1]}}

    assert outcome_tier(rec((True, True), (True, True))) == "search"
    assert outcome_tier(rec((False, True), (True, True))) == "small"  # search was right but its gate said no
    assert outcome_tier(rec((True, False), (True, False))) == "large"  # accepted wrong answers earn nothing
    assert outcome_tier(rec((False, False), (False, True))) == "large"


@pytest.mark.slow
def test_a_run_through_the_real_tiers_records_each_verdict(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "squad_v1.1_dev").mkdir(parents=True)
    (data / "wiki_vital_articles_en").mkdir()
    (data / "squad_v1.1_dev" / "passages.jsonl").write_text(json.dumps({
        "passage_id": "p1", "title": "Berlin_Wall",
        "text": "The Berlin Wall was a guarded concrete barrier. The Berlin Wall fell on 9 November 1989, when the "
                "East German government opened the border crossings."}) + "\n")
    (data / "wiki_vital_articles_en" / "summaries_en-us.json").write_text(json.dumps({
        "Penicillin": {"title": "Penicillin", "extract": "Penicillin was discovered in 1928 by Alexander Fleming."}}))
    items = [
        {"source": "squad", "text": "When did the Berlin Wall fall?", "tier": "search",
         "prompt": "When did the Berlin Wall fall?", "reference": ["9 November 1989"]},
        {"source": "gsm8k", "text": "Tom has 3 apples and buys 2 more. How many apples does he have?",
         "tier": "large", "prompt": "Tom has 3 apples and buys 2 more. How many apples does he have?",
         "reference": "5"},
        {"source": "dolly", "text": "Classify as fruit or vegetable: apple, leek", "tier": "small",
         "prompt": "Classify as fruit or vegetable: apple, leek", "reference": "apple fruit, leek vegetable"},
    ]
    out = tmp_path / "outcomes.jsonl"
    asyncio.run(label(items, out, data, None))
    records = {r["source"]: r for r in map(json.loads, out.read_text().splitlines())}
    lookup = records["squad"]
    assert lookup["key"] == text_key("When did the Berlin Wall fall?") and "When" not in json.dumps(lookup)
    assert lookup["search"] == {**lookup["search"], "accepted": True, "correct": True}
    assert lookup["outcome_tier"] == "search" and lookup["small"] is not None  # small is asked all the same
    maths = records["gsm8k"]
    assert not maths["search"]["accepted"] and maths["outcome_tier"] == outcome_tier(maths)
    assert set(maths["small"]) == {"accepted", "confidence", "correct", "completion_tokens"}
    unjudged = records["dolly"]
    assert not unjudged["judged"] and unjudged["outcome_tier"] == "small" and unjudged["small"] is None
