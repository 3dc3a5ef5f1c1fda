"""The gate's parts on their own: answer-type matching and the shape of the confidence."""

from __future__ import annotations

from pathlib import Path

from backends.search.compose import compose
from backends.search.gate import DEFAULT_MIN_CONFIDENCE, answer_type_match, confidence, features
from backends.search.index import SearchIndex
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
