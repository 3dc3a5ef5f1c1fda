"""The small tier's judgement of its own answer: is it good enough, or should the request escalate?

A 135M-parameter model fails in recognisable ways: it answers nothing, refuses ("I'm sorry, but I'm
unable to…"), answers in five words when asked to rewrite a paragraph or write a letter, or loops on
the same phrase. Each failure sets a low confidence; an answer that passes every check has confidence
1.0, or, when the backend measured token log-probabilities, the geometric mean probability of its
tokens (``exp(mean logprob)``), so the admin's live ``min_confidence`` threshold then acts on a
model-derived figure. An answer is sufficient when its confidence reaches the threshold; an empty
answer never is (a threshold of 0 accepts every non-empty answer).

The checks are deliberately conservative (they look at the opening of the answer for refusals and
only compare lengths for requests whose expected length is evident), because a false "insufficient"
costs a large-tier call while a false "sufficient" is caught by the classifier routing hard requests
to the large tier in the first place.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

DEFAULT_MIN_CONFIDENCE = 0.5

_REFUSAL = re.compile(
    r"^\W*(?:"
    r"(?:i'?m|i am) sorry,? (?:but )?(?:i|as an ai)"
    r"|(?:i'?m|i am) sorry(?: for (?:any|the) (?:inconvenience|confusion))?,? but,? as an? "
    r"(?:ai|text-based|language model|large language model)"
    r"|i apologi[sz]e,? (?:but )?i"
    r"|(?:i'?m|i am) (?:not able|unable) to"
    r"|i (?:can ?not|can't|cannot|won't|will not|am not able to|do not|don't) "
    r"(?:help|assist|answer|provide|do that|comply|fulfil|fulfill|complete|write|access|browse|have access)"
    r"|as an ai(?: language model)?,? i"
    r"|i don'?t (?:know|have (?:access|the ability|real-time|information))"
    r"|unfortunately,? i (?:can(?:no|')t|am unable|'m unable|don't have)"
    r")",
    re.IGNORECASE,
)
_TRANSFORM = re.compile(
    r"\b(?:rewrite|re-write|rephrase|paraphrase|translate|correct|proofread|fix the grammar|fix grammar"
    r"|fix the spelling|edit|polish|make (?:it|this|the (?:text|sentence|paragraph)) (?:more|less|sound))\b",
    re.IGNORECASE,
)
_LONG_FORM = re.compile(
    r"\b(?:write|draft|compose|create)\b[^.?!\n]{0,40}?\b(?:essay|story|article|blog post|letter|e-?mail"
    r"|poem|paragraph|report|speech|cover letter|description|review|announcement)\b"
    r"|\bexplain in detail\b|\bdescribe in detail\b",
    re.IGNORECASE,
)
_NUMBER_WORDS = {"three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}
_COUNTED_ITEMS = re.compile(
    r"\b(\d{1,2}|three|four|five|six|seven|eight|nine|ten)\s+(?:\w+\s+)?(?:ways|tips|examples|ideas|reasons"
    r"|things|items|steps|names|questions|sentences|words|suggestions|facts|points|options)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w+", re.UNICODE)

TRANSFORM_MIN_RATIO = 0.4
LONG_FORM_MIN_WORDS = 25
REPETITION_MIN_WORDS = 40
REPETITION_MAX_REPEATED_SHARE = 0.5


@dataclass(frozen=True)
class Verdict:
    """Whether an answer is sufficient, the confidence behind it, and why not."""

    sufficient: bool
    confidence: float
    reason: str | None = None


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def supplied_text(request_text: str) -> str:
    """The text a request supplies to be transformed: what follows its first colon or line break."""
    match = re.search(r"[:\n]", request_text)
    return request_text[match.end():] if match else ""


def expected_min_words(request_text: str) -> tuple[int, str] | None:
    """The fewest words a sufficient answer needs for this request, with the reason, or None."""
    supplied = len(_words(supplied_text(request_text)))
    if _TRANSFORM.search(request_text) and supplied >= 8:
        return max(3, int(supplied * TRANSFORM_MIN_RATIO)), f"a rewrite of {supplied} supplied words"
    counted = _COUNTED_ITEMS.search(request_text)
    if counted:
        raw = counted.group(1).lower()
        count = int(raw) if raw.isdigit() else _NUMBER_WORDS[raw]
        if count >= 2:
            return count * 2, f"{count} requested items"
    if _LONG_FORM.search(request_text):
        return LONG_FORM_MIN_WORDS, "a long-form piece of writing"
    return None


def repeated_share(words: list[str], n: int = 3) -> float:
    """The share of word n-grams that repeat an earlier one (0 for short texts)."""
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def judge_answer(
    request_text: str,
    answer: str,
    *,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    mean_logprob: float | None = None,
    hit_token_limit: bool = False,
) -> Verdict:
    """Judge a small-tier answer to ``request_text``; ``hit_token_limit`` skips the too-short check."""
    words = _words(answer)
    if not words:
        return Verdict(False, 0.0, "empty answer")
    cap, reason = 1.0, None
    if _REFUSAL.search(answer.strip()[:200]):
        cap, reason = 0.0, "the model refused or said it cannot answer"
    elif not hit_token_limit and (expected := expected_min_words(request_text)) and len(words) < expected[0]:
        cap, reason = 0.1, f"answer far too short: {len(words)} words for {expected[1]} (expected >= {expected[0]})"
    elif len(words) >= REPETITION_MIN_WORDS and repeated_share(words) > REPETITION_MAX_REPEATED_SHARE:
        cap, reason = 0.2, f"repetitive answer ({repeated_share(words):.0%} of 3-word phrases repeat)"
    confidence = cap
    if mean_logprob is not None and math.isfinite(mean_logprob):
        token_confidence = math.exp(min(0.0, mean_logprob))
        confidence = min(cap, token_confidence)
        if reason is None and confidence < min_confidence:
            reason = f"low token confidence: mean logprob {mean_logprob:.2f} (geometric mean p={token_confidence:.2f})"
    confidence = round(max(0.0, min(1.0, confidence)), 4)
    if confidence >= min_confidence:
        return Verdict(True, confidence, None)
    return Verdict(False, confidence, reason or f"confidence {confidence} below the threshold {min_confidence}")
