"""The gate's parts on their own: answer-type matching and the shape of the confidence."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from backends.search.backend import TantivyBackend
from backends.search.compose import PassageCache, compose
from backends.search.gate import (
    BIAS,
    DEFAULT_MIN_CONFIDENCE,
    HEADING_MATCH_CONFIDENCE,
    WEIGHTS,
    answer_span,
    answer_type_match,
    confidence,
    features,
    heading_match,
)
from backends.search.index import SearchIndex
from backends.search.ingest import ingest_paths
from backends.search.text import make_analyzer
from router.core import CompletionRequest, Message


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


def test_cached_passage_analysis_composes_the_same_answers(tmp_path: Path, index_dir: Path) -> None:
    handle = SearchIndex(index_dir)
    analyzer = make_analyzer()
    cache = PassageCache(size=3)  # smaller than the passages retrieved: it is emptied and refilled on the way
    questions = ["Who discovered penicillin in 1928?", "When did the Berlin Wall fall?", "Who designed the tower?",
                 "How high is Mount Everest?", "Which river flows through Budapest?", "What is a volcano?",
                 "Where is the Kaaba?"]
    for round_ in range(3):  # the second pass reads from the cache; the third runs on a new commit of the index
        if round_ == 2:
            extra = tmp_path / "kaaba.txt"
            extra.write_text("The Kaaba is a building at the centre of the Great Mosque in Mecca.", encoding="utf-8")
            ingest_paths(index_dir, [extra], progress=False)
        index, searcher = handle.searcher()
        for question in questions:
            plain, cached = compose(analyzer, index, searcher, question), compose(analyzer, index, searcher, question,
                                                                                 cache=cache)
            assert (cached.sentences, cached.sources, features(cached)) == (plain.sentences, plain.sources,
                                                                           features(plain))
            assert confidence(cached) == confidence(plain)
    assert cached.sentences == ["The Kaaba is a building at the centre of the Great Mosque in Mecca."]
    assert 0 < len(cache._entries) <= 3


def test_what_one_searcher_read_is_never_served_for_another() -> None:
    cache = PassageCache(size=2)
    old, new = object(), object()  # two commits of an index
    late = cache.for_searcher(old)  # a lookup still reading the old commit ...
    current = cache.for_searcher(new)  # ... while another one reads the new commit
    late.stored[(0, 1)] = ("old", "", "", "old text", None)
    assert current is not late and (0, 1) not in current.stored and cache.for_searcher(new) is current
    current.stored.update({(0, 1): ("a", "", "", "", None), (0, 2): ("b", "", "", "", None)})
    assert cache.for_searcher(new) is not current  # full: started anew


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


def test_a_question_whose_fact_the_index_does_not_state_is_rejected(index_dir: Path) -> None:
    index, searcher = SearchIndex(index_dir).searcher()
    analyzer = make_analyzer()
    stated = compose(analyzer, index, searcher, "Who discovered penicillin in 1928?")
    changed_year = compose(analyzer, index, searcher, "Who discovered penicillin in 1941?")
    changed_name = compose(analyzer, index, searcher, "When did Marie Curie discover penicillin?")
    assert confidence(stated) >= DEFAULT_MIN_CONFIDENCE
    assert changed_year.numbers_stated == 0.0 and confidence(changed_year) < DEFAULT_MIN_CONFIDENCE
    assert changed_name.names_stated < 1.0 and confidence(changed_name) < DEFAULT_MIN_CONFIDENCE


def test_with_the_answer_passage_left_out_the_near_miss_is_rejected(index_dir: Path) -> None:
    index, searcher = SearchIndex(index_dir).searcher()
    analyzer = make_analyzer()
    question = "When did the Berlin Wall fall?"
    full = compose(analyzer, index, searcher, question)
    assert full.hits[full.best_hit].title == "Berlin Wall" and confidence(full) >= DEFAULT_MIN_CONFIDENCE
    removed = compose(analyzer, index, searcher, question, exclude=lambda hit: hit.title == "Berlin Wall")
    assert all(hit.title != "Berlin Wall" for hit in removed.hits)
    assert confidence(removed) < DEFAULT_MIN_CONFIDENCE


@pytest.mark.parametrize(("question", "sentences", "span"), [
    ("When did the Berlin Wall fall?", ["The wall fell on 9 November 1989, when East Germany opened."],
     "9 November 1989"),
    ("Who discovered penicillin?", ["Penicillin was discovered by Alexander Fleming in 1928."], "Alexander Fleming"),
    ("How many moons does Mars have?", ["Mars has two moons."], "two"),
    ("How tall is Everest?", ["Everest is 8,849 metres high and was climbed in 1953."], None),  # two numbers
    ("What is a volcano?", ["A volcano is a rupture in the crust."], None),  # not a when/who/how-many question
    ("Who designed the Eiffel Tower?", ["The Eiffel Tower was designed well."], None),  # only the asked name
])
def test_an_answer_span_is_named_only_when_one_candidate_answers_the_asked_type(
        question: str, sentences: list[str], span: str | None) -> None:
    assert answer_span(question, sentences) == span


def test_the_backend_returns_the_sentence_with_its_passage_and_span(backend: TantivyBackend) -> None:
    completion = backend.answer(CompletionRequest(messages=[Message("user", "When did the Berlin Wall fall?")]))
    evidence = completion.evidence
    assert completion.sufficient and evidence is not None
    assert evidence.span == "9 November 1989" and evidence.sentences[0] in completion.text
    assert evidence.passage.source.title == "Berlin Wall" and evidence.sentences[0] in evidence.passage.text
    assert len(completion.text) < len(evidence.passage.text) + 60  # the sentence and its source, not the passage
    body = evidence.to_dict()
    assert body["span"] == "9 November 1989" and body["sentences"] == evidence.sentences
    assert body["passage"]["title"] == "Berlin Wall" and body["passage"]["url"] == "https://example.org/berlin-wall"


def _index_of(tmp_path: Path, documents: dict[str, str]) -> tuple[object, object]:
    paths = []
    for name, text in documents.items():
        path = tmp_path / f"{name}.md"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    ingest_paths(tmp_path / "index", paths, progress=False)
    return SearchIndex(tmp_path / "index").searcher()


def test_two_sentences_too_close_to_tell_apart_are_both_returned_in_passage_order(tmp_path: Path) -> None:
    index, searcher = _index_of(tmp_path, {"bridge": (
        "# Harbour\n\nThe Blue Bridge was opened in 1901 by the mayor of the old harbour town. "
        "The Blue Bridge was opened again in 1950 after the long repairs of the war years. "
        "Fishing boats still moor under its arches every morning.\n")})
    answer = compose(make_analyzer(), index, searcher, "When was the Blue Bridge opened?")
    assert answer.sentence_margin < 0.05
    assert [s.split(" in ")[1][:4] for s in answer.sentences] == ["1901", "1950"]  # both, in the passage's order
    assert features(answer)[-1] == 1.0


def test_a_clear_winner_is_returned_alone_and_a_runner_up_elsewhere_is_cited(tmp_path: Path) -> None:
    index, searcher = _index_of(tmp_path, {
        "bridge": "# Blue Bridge\n\nThe Blue Bridge over the river was opened in 1901 by the mayor of the town.\n"
                  "Fishing boats still moor under its arches every single morning of the year.\n",
        "ferry": "# Ferry\n\nBefore any bridge was opened, a ferry crossed the river twice an hour for a penny.\n"})
    analyzer = make_analyzer()
    clear = compose(analyzer, index, searcher, "When was the Blue Bridge over the river opened by the mayor?")
    assert len(clear.sentences) == 1 and "1901" in clear.sentences[0] and clear.sentence_margin >= 0.05
    assert [s.title for s in clear.sources] == ["Blue Bridge"]


def test_a_runner_up_from_another_passage_is_cited_with_it(tmp_path: Path) -> None:
    index, searcher = _index_of(tmp_path, {
        "a": "# Keeper notes A\n\nThe old lighthouse keeper was paid in salt.\n",
        "b": "# Keeper notes B\n\nThe old lighthouse keeper was paid in fish.\n"})
    answer = compose(make_analyzer(), index, searcher, "What was the old lighthouse keeper paid in?")
    assert len(answer.sentences) == 2 and {s.rsplit(" ", 1)[1] for s in answer.sentences} == {"salt.", "fish."}
    assert sorted(s.title for s in answer.sources) == ["Keeper notes A", "Keeper notes B"]


def test_the_admin_default_is_the_gate_default() -> None:
    from router.core.policy import GATE_THRESHOLDS

    admin = next(spec.default for spec in GATE_THRESHOLDS if spec.name == "search.min_confidence")
    assert admin == DEFAULT_MIN_CONFIDENCE
