"""The tantivy backend on real indexes: answers with sources, hostile queries, gate, reloads, failures."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

from backends.config import TierConfig
from backends.registry import build_backend
from backends.search.backend import SearchOptions, TantivyBackend, build
from backends.search.ingest import build_demo_index, ingest_paths
from router.core import Completion, CompletionRequest, Message, TextDelta
from router.core.errors import InvalidRequestError, TierUnavailableError


def ask(backend: TantivyBackend, question: str, min_confidence: float | None = None) -> Completion:
    request = CompletionRequest(messages=[Message("user", question)], min_confidence=min_confidence)
    return asyncio.run(backend.complete(request))


@pytest.mark.parametrize(
    ("question", "expected", "title", "url"),
    [
        ("Who designed the Eiffel Tower?", "Gustave Eiffel", "Eiffel Tower", "https://example.org/eiffel"),
        ("When did the Berlin Wall fall?", "9 November 1989", "Berlin Wall", "https://example.org/berlin-wall"),
        ("Who discovered penicillin?", "Alexander Fleming", "penicillin", None),
        ("Who made the first ascent of Mount Everest?", "Edmund Hillary", "Mount Everest", None),
        ("Which is the largest active volcano on Earth?", "Mauna Loa", "Volcanoes: Mauna Loa", None),
        ("How do honey bees communicate the location of flowers?", "waggle dance", "Honey bees",
         "https://example.org/bees"),
    ],
)
def test_answers_come_with_sources_from_every_format(
    backend: TantivyBackend, question: str, expected: str, title: str, url: str | None
) -> None:
    completion = ask(backend, question)
    answer, _, sources_block = completion.text.partition("\n\nSources:\n")
    assert expected in answer
    assert completion.sources[0].title == title
    if url:
        assert completion.sources[0].url == url
        assert f"- {title} ({url})" in sources_block
    assert completion.model == "tantivy" and completion.prompt_tokens == 0 == completion.completion_tokens
    assert completion.passages and completion.passages[0].source.title == title
    assert completion.cpu_seconds is not None and completion.cpu_seconds > 0
    assert 0.0 <= (completion.confidence or 0.0) <= 1.0


def test_html_scripts_and_hidden_folders_are_not_indexed(backend: TantivyBackend) -> None:
    assert "javascript" not in ask(backend, "javascript should not be indexed").text
    assert ask(backend, "hidden files are ignored").text.startswith("No passage")


@pytest.mark.parametrize(
    "hostile",
    [
        '"unbalanced quote', "title:Berlin", "text:wall AND url:*", "(Berlin OR [Wall} NOT", "AND OR NOT",
        "Berlin^10 wall~2", "+-&&||!(){}[]^\"~*?:\\/", "Wälle in Berlín — 壁 🧱?", "\x00\x01 control",
        "x" * 10_000, "berlin " * 2_000, " ".join(f"w{i}:" for i in range(2_000)),
    ],
)
def test_hostile_queries_are_plain_text(backend: TantivyBackend, hostile: str) -> None:
    completion = ask(backend, hostile)
    assert isinstance(completion.text, str) and completion.text
    assert 0.0 <= (completion.confidence or 0.0) <= 1.0


def test_colon_and_brackets_still_find_the_words(backend: TantivyBackend) -> None:
    completion = ask(backend, 'title:"Berlin" (wall) [fell]?')
    assert completion.sources[0].title == "Berlin Wall"


def test_empty_question_is_a_clear_error(backend: TantivyBackend) -> None:
    with pytest.raises(InvalidRequestError):
        ask(backend, "   ")


def test_gate_accepts_answers_in_the_corpus_and_rejects_unrelated_questions(backend: TantivyBackend) -> None:
    accepted = ask(backend, "Who discovered penicillin in 1928?")
    assert accepted.sufficient and accepted.reason is None
    for unrelated in ["What is the boiling point of liquid nitrogen in kelvin?",
                      "Who won the 1998 football World Cup final?", "qwzx plorb"]:
        rejected = ask(backend, unrelated)
        assert not rejected.sufficient and rejected.reason
        assert (rejected.confidence or 0.0) < SearchOptions().min_confidence


def test_request_threshold_overrides_the_option_default(backend: TantivyBackend) -> None:
    completion = ask(backend, "Who discovered penicillin in 1928?", min_confidence=1.0)
    assert not completion.sufficient and "below the threshold 1.00" in (completion.reason or "")
    assert ask(backend, "qwzx plorb wall", min_confidence=0.0).sufficient


def test_streaming_yields_the_whole_answer_then_the_completion(backend: TantivyBackend) -> None:
    async def collect() -> list[object]:
        request = CompletionRequest(messages=[Message("user", "Who designed the Eiffel Tower?")])
        return [event async for event in backend.stream(request)]

    events = asyncio.run(collect())
    final = events[-1]
    assert isinstance(final, Completion)
    deltas = [e.text for e in events[:-1] if isinstance(e, TextDelta)]
    assert len(deltas) > 1 and "".join(deltas) == final.text


def test_incremental_adds_become_visible_without_restart(tmp_path: Path, index_dir: Path,
                                                         backend: TantivyBackend) -> None:
    assert "Canberra" not in ask(backend, "What is the capital of Australia?").text
    extra = tmp_path / "extra.jsonl"
    extra.write_text(json.dumps({"title": "Australia", "text": "Canberra is the capital city of Australia."}))
    ingest_paths(index_dir, [extra], progress=False)
    completion = ask(backend, "What is the capital of Australia?")
    assert "Canberra" in completion.text and completion.sources[0].title == "Australia"


def test_concurrent_searches_while_ingesting(tmp_path: Path, index_dir: Path, backend: TantivyBackend) -> None:
    errors: list[BaseException] = []
    stop = threading.Event()

    def searcher() -> None:
        request = CompletionRequest(messages=[Message("user", "Who designed the Eiffel Tower?")])
        while not stop.is_set():
            try:
                assert "Gustave Eiffel" in backend.answer(request).text
            except BaseException as exc:  # noqa: BLE001 - collected and re-raised below
                errors.append(exc)
                return

    threads = [threading.Thread(target=searcher) for _ in range(4)]
    for thread in threads:
        thread.start()
    for batch in range(3):
        extra = tmp_path / f"batch{batch}.jsonl"
        extra.write_text(json.dumps({"title": f"Batch {batch}", "text": f"Batch number {batch} was added."}))
        ingest_paths(index_dir, [extra], progress=False)
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors
    assert "Batch number 2" in backend.answer(
        CompletionRequest(messages=[Message("user", "which batch number 2 was added")])).text


def test_missing_index_is_reported_not_crashed_then_picked_up(tmp_path: Path, corpus: Path) -> None:
    backend = build(TierConfig(backend="tantivy"), tier="search", data_dir=tmp_path / "data")
    health = asyncio.run(backend.health())
    assert not health.ready and "no search index" in health.detail
    with pytest.raises(TierUnavailableError):
        ask(backend, "Who designed the Eiffel Tower?")
    ingest_paths(tmp_path / "data" / "index", [corpus], progress=False)
    assert asyncio.run(backend.health()).ready
    assert "Gustave Eiffel" in ask(backend, "Who designed the Eiffel Tower?").text


def test_corrupt_index_is_unavailable(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "meta.json").write_text("{ not meta")
    backend = TantivyBackend(tier="search", index_dir=broken)
    health = asyncio.run(backend.health())
    assert not health.ready and "cannot be opened" in health.detail
    with pytest.raises(TierUnavailableError):
        ask(backend, "anything")


def test_options_are_validated_and_name_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="valid options: index_dir, min_confidence, top_k"):
        build(TierConfig(backend="tantivy", options={"topk": 3}), tier="search", data_dir=tmp_path)
    with pytest.raises(ValueError, match="min_confidence"):
        build(TierConfig(backend="tantivy", options={"min_confidence": 2}), tier="search", data_dir=tmp_path)


def test_registry_builds_the_backend_on_the_demo_index(tmp_path: Path) -> None:
    build_demo_index(tmp_path / "data" / "index")
    backend = build_backend("tantivy", TierConfig(backend="tantivy"), tier="search", data_dir=tmp_path / "data")
    assert isinstance(backend, TantivyBackend)
    completion = ask(backend, "Which port does frugal serve use by default?")
    assert "8000" in completion.text and completion.sufficient
    assert completion.sources[0].title.startswith("Frugal FAQ")
    assert asyncio.run(backend.health()).ready
    for question in ("What is Frugal?", "what is frugal"):  # a one-term FAQ heading: the heading rule
        answer = ask(backend, question)
        assert answer.sufficient and answer.text.startswith("Frugal is an open-source"), question


def test_quick_lookups_run_on_the_event_loop_and_slow_ones_in_a_thread(backend: TantivyBackend,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread hop costs more than a sub-millisecond lookup frees (issue 23); a slow index must not stall the loop."""
    from backends.search import backend as module

    threads: list[int] = []
    answer = backend.answer

    def recording(request: CompletionRequest) -> object:
        threads.append(threading.get_ident())
        return answer(request)

    monkeypatch.setattr(backend, "answer", recording)
    request = CompletionRequest(messages=[Message("user", "When did the Berlin Wall fall?")])

    async def ask() -> int:
        await backend.complete(request)
        return threading.get_ident()

    loop_thread = asyncio.run(ask())
    assert threads[-1] == loop_thread  # no slow lookup seen yet: on the event loop
    monkeypatch.setattr(module, "INLINE_BELOW_S", 0.0)  # as if lookups were slow
    loop_thread = asyncio.run(ask())
    assert not backend.inline() and threads[-1] != loop_thread
