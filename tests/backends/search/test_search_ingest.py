"""Ingestion into a real tantivy index: every format, skips, de-duplication, replacement, stats, demo."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from backends.search.ingest import MAX_WORDS, OVERLAP_SENTENCES, build_demo_index, index_stats, ingest_paths
from backends.search.text import chunk_text, split_sentences


def test_every_format_is_ingested_and_bad_input_is_skipped_with_reasons(tmp_path: Path, corpus: Path) -> None:
    summary = ingest_paths(tmp_path / "idx", [corpus, tmp_path / "missing.jsonl", corpus / "image.png"],
                           progress=False)
    # 3 JSONL + 2 keyed JSON + 1 text + 2 Markdown sections + 1 HTML
    assert summary.docs == 9
    reasons = dict(summary.skipped)
    assert reasons[str(tmp_path / "missing.jsonl")] == "no such file or directory"
    assert "unsupported file type '.png'" in reasons[str(corpus / "image.png")]
    assert reasons[f"{corpus / 'facts.jsonl'}:4"].startswith("invalid JSON")
    assert "missing or empty text field 'text'" in reasons[f"{corpus / 'facts.jsonl'}:5"]
    assert json.loads(json.dumps(summary.to_dict()))["docs"] == 9
    stats = index_stats(tmp_path / "idx")
    assert stats["exists"] and stats["docs"] == 9 and stats["passages"] >= 9 and stats["size_bytes"] > 0


def test_reingesting_the_same_files_adds_nothing(tmp_path: Path, corpus: Path) -> None:
    ingest_paths(tmp_path / "idx", [corpus], progress=False)
    again = ingest_paths(tmp_path / "idx", [corpus], progress=True)
    assert again.docs == 0 and again.passages == 0 and again.duplicates == 9
    assert index_stats(tmp_path / "idx")["docs"] == 9


def test_duplicate_content_under_another_id_is_stored_once(tmp_path: Path) -> None:
    data = tmp_path / "dupes.jsonl"
    record = {"title": "Same", "text": "Identical text about the same thing. It appears twice in the file."}
    data.write_text(json.dumps(record) + "\n" + json.dumps({**record, "text": record["text"].upper()}) + "\n")
    summary = ingest_paths(tmp_path / "idx", [data], progress=False)
    assert (summary.docs, summary.duplicates) == (1, 1)


def test_changed_document_replaces_the_old_version(tmp_path: Path) -> None:
    data = tmp_path / "doc.jsonl"
    data.write_text(json.dumps({"id": "d1", "title": "Old", "text": "The first version says alpha."}) + "\n")
    ingest_paths(tmp_path / "idx", [data], progress=False)
    data.write_text(json.dumps({"id": "d1", "title": "New", "text": "The second version says beta."}) + "\n")
    summary = ingest_paths(tmp_path / "idx", [data], progress=False)
    assert summary.replaced == 1
    stats = index_stats(tmp_path / "idx")
    assert stats["docs"] == 1 and stats["passages"] == 1


def _long_text(topic: str, sentences: int = 80) -> str:
    return " ".join(f"Sentence {i} of the {topic} document states fact number {i} in some detail." for i in range(sentences))


@pytest.mark.parametrize("change", ["title only", "last passage only"])
def test_replacing_a_multi_passage_document_keeps_its_unchanged_passages(tmp_path: Path, change: str) -> None:
    data = tmp_path / "doc.jsonl"
    text = _long_text("harbour")
    data.write_text(json.dumps({"id": "d1", "title": "Harbour", "text": text}) + "\n")
    first = ingest_paths(tmp_path / "idx", [data], progress=False)
    assert first.passages > 2
    if change == "title only":
        new = {"id": "d1", "title": "The harbour", "text": text}
    else:
        new = {"id": "d1", "title": "Harbour", "text": text + " A closing sentence added in the second version."}
    data.write_text(json.dumps(new) + "\n")
    summary = ingest_paths(tmp_path / "idx", [data], progress=False)
    assert summary.replaced == 1
    stats = index_stats(tmp_path / "idx")
    assert stats["docs"] == 1 and stats["passages"] == len(chunk_text(new["text"], max_words=MAX_WORDS,
                                                                        overlap=OVERLAP_SENTENCES))


def test_field_overrides_select_other_keys(tmp_path: Path) -> None:
    data = tmp_path / "custom.jsonl"
    data.write_text(json.dumps({"name_of_thing": "Custom", "body_text": "A record with renamed fields."}) + "\n")
    default = ingest_paths(tmp_path / "a", [data], progress=False)
    assert default.docs == 0 and "missing or empty text field 'text'" in default.skipped[0][1]
    custom = ingest_paths(tmp_path / "b", [data], title_field="name_of_thing", text_field="body_text",
                          progress=False)
    assert custom.docs == 1 and not custom.skipped


def test_long_documents_are_chunked_with_sentence_overlap() -> None:
    sentences = [f"Sentence number {i} talks about topic {i} at some length here." for i in range(60)]
    passages = chunk_text(" ".join(sentences), max_words=40, overlap=1)
    assert len(passages) > 5
    for left, right in itertools.pairwise(passages):
        assert split_sentences(left)[-1] == split_sentences(right)[0]
    assert all(len(p.split()) <= 40 + 10 for p in passages)


def test_sentence_splitter_keeps_abbreviations() -> None:
    assert split_sentences("It was built c. 1900 by Dr. Smith. It fell in 1950.") == [
        "It was built c. 1900 by Dr. Smith.", "It fell in 1950."]


def test_index_stats_without_an_index(tmp_path: Path) -> None:
    assert index_stats(tmp_path / "none") == {
        "index_dir": str(tmp_path / "none"), "exists": False, "docs": 0, "passages": 0, "size_bytes": 0}


def test_demo_index_is_built_once_and_never_over_an_operator_index(tmp_path: Path, corpus: Path) -> None:
    first = build_demo_index(tmp_path / "demo")
    assert first.docs >= 10 and not first.skipped
    assert index_stats(tmp_path / "demo")["demo"] is True
    second = build_demo_index(tmp_path / "demo")
    assert (second.docs, second.passages, second.skipped) == (0, 0, [])
    ingest_paths(tmp_path / "mine", [corpus], progress=False)
    untouched = build_demo_index(tmp_path / "mine")
    assert untouched.docs == 0 and untouched.skipped
    assert index_stats(tmp_path / "mine")["docs"] == 9


def test_a_second_writer_gets_a_clear_error(tmp_path: Path, corpus: Path) -> None:
    from backends.search.index import WRITER_HEAP_BYTES, open_index
    from router.core.errors import TierUnavailableError

    ingest_paths(tmp_path / "idx", [corpus], progress=False)
    holder = open_index(tmp_path / "idx").writer(WRITER_HEAP_BYTES, 1)
    try:
        with pytest.raises(TierUnavailableError, match="another process is writing"):
            ingest_paths(tmp_path / "idx", [corpus], progress=False)
    finally:
        holder.rollback()
        del holder
