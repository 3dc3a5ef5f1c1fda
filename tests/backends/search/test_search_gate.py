"""The gate's parts on their own: answer-type matching and the shape of the confidence."""

from __future__ import annotations

import math
from pathlib import Path

from backends.search.compose import compose
from backends.search.gate import (
    BIAS,
    DEFAULT_MIN_CONFIDENCE,
    HEADING_MATCH_CONFIDENCE,
    WEIGHTS,
    answer_type_match,
    confidence,
    features,
    heading_match,
)
from backends.search.index import SearchIndex
from backends.search.ingest import ingest_paths
from backends.search.text import make_analyzer


def test_answer_type_match() -> None:
    assert answer_type_match("When did the wall fall?", ["It fell on 9 November 1989."]) == 1.0
    assert answer_type_match("When did the wall fall?", ["It fell after protests."]) == 0.0
    assert answer_type_match("How many moons in 2020?", ["In 2020 there were moons."]) == 0.0
    assert answer_type_match("Who designed the tower?", ["It was designed by Gustave Eiffel."]) == 1.0
    assert answer_type_match("Who designed the Tower?", ["The Tower was designed well."]) == 0.0
    assert answer_type_match("What is a volcano?", ["A rupture in the crust."]) == 0.5


def test_confidence_is_bounded_and_orders_good_above_bad(index_dir: Path) -> None:
    index, searcher = SearchIndex(index_dir).searcher()
    analyzer = make_analyzer()
    good = compose(analyzer, index, searcher, "Who discovered penicillin in 1928?")
    bad = compose(analyzer, index, searcher, "Which river flows through Budapest and Vienna in Austria?")
    nothing = compose(analyzer, index, searcher, "zzqx")
    assert all(0.0 <= x <= 1.0 for x in features(good) + features(bad))
    assert confidence(nothing) == 0.0 and not nothing.found
    assert 0.0 < confidence(bad) < DEFAULT_MIN_CONFIDENCE <= confidence(good) <= 1.0


def test_an_faq_heading_that_is_the_question_is_trusted(tmp_path: Path) -> None:
    faq = tmp_path / "faq.md"
    faq.write_text("# Widget FAQ\n\n## What is Widget?\n\nWidget is a small tool that sorts screws by size.\n\n"
                   "## Where is Widget made?\n\nIt is made in a workshop in Lyon since 2019.\n", encoding="utf-8")
    ingest_paths(tmp_path / "index", [faq], progress=False)
    index, searcher = SearchIndex(tmp_path / "index").searcher()
    analyzer = make_analyzer()
    for question in ("What is Widget?", "what is  WIDGET"):
        answer = compose(analyzer, index, searcher, question)
        model = 1.0 / (1.0 + math.exp(-(BIAS + sum(w * x for w, x in zip(WEIGHTS, features(answer), strict=True)))))
        assert heading_match(answer) and answer.sentences[0].startswith("Widget is a small tool")
        assert confidence(answer) == max(model, HEADING_MATCH_CONFIDENCE) >= DEFAULT_MIN_CONFIDENCE
    other = compose(analyzer, index, searcher, "What is Widget made of?")
    assert not heading_match(other) and confidence(other) < HEADING_MATCH_CONFIDENCE
