"""The cheap surface features: supplied text, code and maths markers, question shape."""

from __future__ import annotations

import numpy as np

from classifiers.features import FEATURE_NAMES, feature_matrix, supplied_text_length, surface_features


def feature(text: str, name: str, *, follow_up: bool = False) -> float:
    return float(surface_features(text, follow_up=follow_up)[FEATURE_NAMES.index(name)])


def test_supplied_text_after_a_colon_or_in_quotes_is_measured() -> None:
    passage = "The meeting moved to Friday because another team had booked the room for the whole day."
    assert supplied_text_length(f"Summarize this: {passage}") >= len(passage) - 1
    assert supplied_text_length(f'Make this friendlier "{passage}"') == len(passage)
    assert supplied_text_length("Summarize the causes of the First World War") == 0
    assert feature(f"Summarize this: {passage}", "supplied_share") > 0.8
    assert feature("Who wrote Hamlet?", "supplied_text") == 0.0


def test_code_and_arithmetic_markers() -> None:
    assert feature("def f(x):\n    return x[len(x)]", "code_markers") > 0
    assert feature("Who wrote Hamlet?", "code_markers") == 0
    assert feature("what is 17 * 23", "arithmetic") == 1.0
    assert feature("I have 3 cats and 2 dogs", "arithmetic") == 0.0
    assert feature("I have 3 cats and 2 dogs", "numbers") > 0


def test_question_shape_in_several_languages_and_the_follow_up_flag() -> None:
    for question in ("Who wrote Hamlet?", "Quand a été construite la tour Eiffel ?", "¿Cuándo cayó el muro?",
                     "Wann wurde Berlin gegründet?"):
        assert feature(question, "wh_start") == 1.0 and feature(question, "question_mark") == 1.0
    assert feature("Rewrite this politely: send it now", "wh_start") == 0.0
    assert feature("and why?", "follow_up", follow_up=True) == 1.0


def test_matrix_shape_and_empty_input() -> None:
    matrix = feature_matrix(["a", "b c"], [False, True])
    assert matrix.shape == (2, len(FEATURE_NAMES)) and matrix.dtype == np.float32
    assert feature_matrix([]).shape == (0, len(FEATURE_NAMES))
