"""The small tier's own answer checks: empty, refusal, far too short, repetitive, low token confidence."""

from __future__ import annotations

import math

import pytest

from backends.sufficiency import DEFAULT_MIN_CONFIDENCE, expected_min_words, judge_answer, repeated_share

PARAGRAPH = (
    "Rewrite this more politely: send me the quarterly report by tomorrow morning or I will escalate "
    "the matter to your manager, because I am tired of waiting for it every single quarter."
)


def test_a_plain_answer_is_sufficient_with_full_confidence() -> None:
    verdict = judge_answer("Translate to French: good morning", "Bonjour")
    assert verdict.sufficient and verdict.confidence == 1.0 and verdict.reason is None


@pytest.mark.parametrize("answer", ["", "   \n", "..."])
def test_an_empty_answer_is_never_sufficient(answer: str) -> None:
    verdict = judge_answer("Say hello", answer, min_confidence=0.0)
    assert not verdict.sufficient and verdict.confidence == 0.0 and verdict.reason == "empty answer"


@pytest.mark.parametrize(
    "answer",
    [
        "I'm sorry, but I can't help you with that.",
        "I am sorry, but as an AI I cannot browse the web.",
        "I'm sorry for any inconvenience, but as a text-based AI, I don't have the ability to do that.",
        "As an AI language model, I do not have opinions.",
        "I cannot assist with that request.",
        "I don't know.",
        "Unfortunately, I am unable to do that.",
    ],
)
def test_refusals_are_insufficient(answer: str) -> None:
    verdict = judge_answer("Summarize this: the cat sat on the mat.", answer)
    assert not verdict.sufficient
    assert verdict.confidence == 0.0 and "refused" in (verdict.reason or "")


def test_refusal_words_later_in_an_answer_do_not_count() -> None:
    answer = "Dear team, I cannot stress enough how much your work matters. Thank you all."
    assert judge_answer("Write a short thank-you note to my team.", answer).sufficient


def test_a_rewrite_far_shorter_than_its_input_is_too_short() -> None:
    verdict = judge_answer(PARAGRAPH, "Please send it.")
    assert not verdict.sufficient and "far too short" in (verdict.reason or "")
    polite = ("Could you please send me the quarterly report by tomorrow morning? I would really appreciate "
              "it, as waiting for it each quarter has been difficult.")
    assert judge_answer(PARAGRAPH, polite).sufficient


def test_a_cut_off_answer_is_not_judged_too_short() -> None:
    assert judge_answer(PARAGRAPH, "Could you please", hit_token_limit=True).sufficient


def test_counted_items_and_long_form_set_an_expected_length() -> None:
    assert expected_min_words("Give me five tips for sleeping better.") == (10, "5 requested items")
    assert expected_min_words("Write a cover letter for a barista job.")[0] >= 20  # type: ignore[index]
    assert expected_min_words("What is 2 + 2?") is None
    assert not judge_answer("List 10 ideas for a birthday party.", "Cake.").sufficient


def test_a_looping_answer_is_insufficient() -> None:
    looping = " ".join(["the cat is on the mat and"] * 12)
    assert repeated_share(looping.split()) > 0.5
    verdict = judge_answer("Tell me about cats.", looping)
    assert not verdict.sufficient and "repetitive" in (verdict.reason or "")


def test_mean_logprob_becomes_the_confidence_and_meets_the_threshold() -> None:
    confident = judge_answer("Say hello", "Hello there!", mean_logprob=-0.1, min_confidence=0.5)
    assert confident.sufficient and confident.confidence == pytest.approx(math.exp(-0.1), abs=1e-4)
    unsure = judge_answer("Say hello", "Hello there!", mean_logprob=-2.0, min_confidence=0.5)
    assert not unsure.sufficient and "low token confidence" in (unsure.reason or "")
    assert judge_answer("Say hello", "Hello there!", mean_logprob=-2.0, min_confidence=0.1).sufficient


def test_the_threshold_decides_for_soft_failures() -> None:
    assert DEFAULT_MIN_CONFIDENCE == 0.5
    short = judge_answer(PARAGRAPH, "Please send it.", min_confidence=0.0)
    assert short.sufficient and short.confidence == 0.1
    assert not judge_answer("Say hello", "Hello", min_confidence=1.01).sufficient
