"""The sufficiency gate: how sure the search tier is that its composed answer answers the question.

A wrong answer from the index is worse than an escalation, so the tier scores each answer in [0, 1]
from what predicts correctness on SQuAD (see docs/SEARCH.md and bench/search.py):

- ``context_coverage``: the IDF-weighted share of the question's terms found in the chosen sentence
  or its passage's title. Rare terms weigh most, so a question about something the index does not
  know (a name absent from every passage) scores low.
- ``sentence_coverage``: the same share in the sentence alone; an answer sentence usually restates
  the question's own words.
- very short questions (one or two terms) prove little even when fully covered, so they are damped.

The confidence is compared with the admin threshold ``search.min_confidence``.
"""

from __future__ import annotations

from backends.search.compose import Answer

DEFAULT_MIN_CONFIDENCE = 0.5


def confidence(answer: Answer) -> float:
    """The answer's confidence in [0, 1] (0 when nothing matched)."""
    if not answer.found:
        return 0.0
    terms = len(answer.terms.terms)
    damping = min(1.0, 0.5 + 0.2 * terms)
    score = (0.6 * answer.context_coverage + 0.4 * answer.sentence_coverage) * damping
    return max(0.0, min(1.0, score))


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
