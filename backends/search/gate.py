"""The sufficiency gate: how sure the search tier is that its composed answer answers the question.

A wrong answer from the index is worse than an escalation, so the tier scores each answer in [0, 1]
from what predicts correctness on SQuAD (see docs/SEARCH.md and bench/search.py):

- ``context_coverage``: the IDF-weighted share of the question's terms found in the chosen sentence
  or its passage's title. Rare terms weigh most, so a question about something the index does not
  know (a name absent from every passage) scores low.
- ``sentence_coverage``: the same share in the sentence alone; an answer sentence usually restates
  the question's own words.
- the BM25 margin between the first and second passage: a clear winner is more often right.
- whether the sentence comes from the top passage, and the question's length (one- or two-term
  questions prove little even when fully covered).
- whether the sentence offers the kind of thing asked for ("when" wants a number, "who" a name).
- what the question asks that the text must state (issue 20): the share of the question's terms *not* in the
  passage title that the sentence holds (a near-miss passage of the same article shares the topic, not the
  asked fact), the rarest question term missing, the question's word pairs found as pairs, the passage's
  coverage, and whether the passage states the question's numbers and capitalised names (a question about
  1941 is not answered by a passage about 1928).
- how clearly the best sentence beat the runner-up, and whether the answer has two sentences (a runner-up
  that scored within ``compose.RUNNER_UP_MARGIN`` of the best is returned with it).

A logistic model turns them into a score, compared with the admin threshold ``search.min_confidence``.
It was fitted on answerable questions *and* on questions the index cannot answer (their gold passage or
article left out, or their year or named entity changed by us), with balanced classes, so the score is not
a calibrated probability: what a threshold means is stated by ``bench/search_gate.py``'s sweep (docs/SEARCH.md).

One rule sits on top: when the answer comes from a passage whose heading *is* the question (an FAQ
entry: title "Frugal FAQ: What is Frugal?" for the question "what is frugal"), the confidence is at
least ``HEADING_MATCH_CONFIDENCE``. SQuAD has no such titles, so the model never learnt this signal,
and it marks one-term questions down: without the rule the demo index's own "What is Frugal?" entry
scored 0.55 and the question fell through to the small model, which invented an answer.
"""

from __future__ import annotations

import math
import re

from backends.search.compose import Answer

DEFAULT_MIN_CONFIDENCE = 0.72

# Logistic-regression weights (sklearn, C=1, balanced classes, an answerable question answered wrongly weighted
# 3: ``MISS_WEIGHT``) fitted by ``bench/search_gate.py --fit`` on the
# SQuAD v1.1 dev questions of the 24 articles with an even position in sorted title order and their negatives
# (17,463 rows, 4,179 positive), evaluated on the other 24 articles and on NQ-open; order as in ``features``:
# context coverage, sentence coverage, BM25 margin, sqrt(margin), best sentence from the top passage, question
# length (terms / 10, capped at 1), answer-type match, specific coverage, rarest missing term, word-pair
# coverage, passage coverage, numbers stated, names stated, sentence margin, two sentences.
WEIGHTS = (2.806, -0.642, -0.221, 1.855, 0.432, 1.411, 0.212, 2.005, 0.496, 2.09, 1.098, 1.991, 1.564, 1.714, 0.147)
BIAS = -9.822
N_FEATURES = 15
HEADING_MATCH_CONFIDENCE = 0.95


_NUMERIC_QUESTION = re.compile(
    r"\b(when|what year|which year|what date|how (many|much|long|old|far|tall|high|big|large|deep|fast))\b",
    re.IGNORECASE,
)
_PERSON_QUESTION = re.compile(r"\b(who|whom|whose)\b", re.IGNORECASE)
_NUMBER = re.compile(r"\d+")
_NAME = re.compile(r"(?<!^)(?<![.!?] )\b[A-Z][\w'-]+")


def answer_type_match(question: str, sentences: list[str]) -> float:
    """1 when the answer offers what the question asks for and it is not in the question, 0 when not.

    "When/how many" wants a number, "who" a capitalised name; other questions are undetermined (0.5).
    """
    text = " ".join(sentences)
    if _NUMERIC_QUESTION.search(question):
        asked = set(_NUMBER.findall(question))
        return 1.0 if any(n not in asked for n in _NUMBER.findall(text)) else 0.0
    if _PERSON_QUESTION.search(question):
        asked = {w.lower() for w in re.findall(r"[\w'-]+", question)}
        return 1.0 if any(n.lower() not in asked for n in _NAME.findall(text)) else 0.0
    return 0.5


_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
_COUNT = (r"(?:\d[\d,.]*|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty"
          r"|hundred|thousand|dozen)")
_NUMBER_SPAN = re.compile(
    rf"\b(?:\d{{1,2}} {_MONTH},? \d{{3,4}}|{_MONTH} \d{{1,2}},? \d{{3,4}}|{_MONTH} \d{{3,4}}"
    rf"|{_COUNT}(?: (?:%|percent|million|billion|thousand|hundred|years?|days?|months?|BC|AD|BCE|CE))?)\b",
    re.IGNORECASE)
_NAME_SPAN = re.compile(r"(?<!^)(?<![.!?] )\b[A-Z][\w'-]+(?: (?:(?:de|van|von|of|the) )?[A-Z][\w'-]+)*")


def answer_span(question: str, sentences: list[str]) -> str | None:
    """The words that answer a when/how-many question (a number, a date) or a who question (a name); else None.

    Named only when the answer offers exactly one candidate the question does not already hold: on held-out SQuAD
    articles the rule names a span for 8.7 % of accepted answers, 84 % of them right (``bench/search_gate.py``);
    picking the nearest of several candidates named 24 % at 63 %, too often wrong to show.
    """
    text = " ".join(sentences)
    asked = {w.lower() for w in re.findall(r"[\w'-]+", question)}
    if _NUMERIC_QUESTION.search(question):
        pattern = _NUMBER_SPAN
    elif _PERSON_QUESTION.search(question):
        pattern = _NAME_SPAN
    else:
        return None
    candidates = {m.group().strip(" ,.") for m in pattern.finditer(text)
                  if {w.lower() for w in re.findall(r"[\w'-]+", m.group())} - asked}
    return candidates.pop() if len(candidates) == 1 else None


def features(answer: Answer) -> list[float]:
    """The gate's inputs, each roughly in [0, 1]."""
    if not answer.found:
        return [0.0] * N_FEATURES
    scores = [h.score for h in answer.hits]
    margin = (scores[0] - scores[1]) / scores[0] if len(scores) > 1 and scores[0] > 0 else 1.0
    return [
        answer.context_coverage,
        answer.sentence_coverage,
        margin,
        math.sqrt(max(margin, 0.0)),
        1.0 if answer.best_hit == 0 else 0.0,
        min(len(answer.terms.terms), 10) / 10,
        answer_type_match(answer.question, answer.sentences),
        answer.specific_coverage,
        answer.rarest_missing,
        answer.bigram_coverage,
        answer.passage_coverage,
        answer.numbers_stated,
        answer.names_stated,
        answer.sentence_margin,
        min(len(answer.sentences) - 1, 1),
    ]


def _normalised(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def heading_match(answer: Answer) -> bool:
    """Whether the answer's passage is headed by the question itself (its title, or the part after the last ': ')."""
    if not answer.found or not 0 <= answer.best_hit < len(answer.hits):
        return False
    question = _normalised(answer.question)
    title = answer.hits[answer.best_hit].title
    return bool(question) and question in (_normalised(title), _normalised(title.rpartition(": ")[2]))


def confidence(answer: Answer) -> float:
    """The answer's confidence in [0, 1] (0 when nothing matched): a logistic model over ``features``."""
    if not answer.found:
        return 0.0
    z = BIAS + sum(w * x for w, x in zip(WEIGHTS, features(answer), strict=True))
    value = 1.0 / (1.0 + math.exp(-z))
    return max(value, HEADING_MATCH_CONFIDENCE) if heading_match(answer) else value


def explain(answer: Answer, value: float, threshold: float) -> str:
    """A one-line reason for an insufficient answer."""
    if not answer.terms.terms:
        return "the question has no searchable terms"
    if not answer.found:
        return "no passage in the search index matches the question"
    return (
        f"retrieval confidence {value:.2f} is below the threshold {threshold:.2f} "
        f"(question-term coverage {answer.context_coverage:.2f})"
    )
