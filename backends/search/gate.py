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

import math

from backends.search.compose import Answer

DEFAULT_MIN_CONFIDENCE = 0.65

# Logistic-regression weights (sklearn, C=1) fitted on the SQuAD v1.1 dev questions of the 24 articles
# with an even position in sorted title order, and evaluated on the other 24 (bench/search.py reports
# both halves); order as in ``features``: context coverage, sentence coverage, BM25 margin,
# sqrt(margin), best sentence from the top passage, question length (terms / 10, capped at 1).
WEIGHTS = (3.2, 1.0, -0.15, 2.9, 0.6, 2.4)
BIAS = -5.2


def features(answer: Answer) -> list[float]:
    """The gate's inputs, each roughly in [0, 1]."""
    if not answer.found:
        return [0.0] * 6
    scores = [h.score for h in answer.hits]
    margin = (scores[0] - scores[1]) / scores[0] if len(scores) > 1 and scores[0] > 0 else 1.0
    return [
        answer.context_coverage,
        answer.sentence_coverage,
        margin,
        math.sqrt(max(margin, 0.0)),
        1.0 if answer.best_hit == 0 else 0.0,
        min(len(answer.terms.terms), 10) / 10,
    ]


def confidence(answer: Answer) -> float:
    """The answer's confidence in [0, 1] (0 when nothing matched): a logistic model over ``features``."""
    if not answer.found:
        return 0.0
    z = BIAS + sum(w * x for w, x in zip(WEIGHTS, features(answer), strict=True))
    return 1.0 / (1.0 + math.exp(-z))


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
