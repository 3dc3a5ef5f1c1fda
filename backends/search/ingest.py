"""Ingestion: files and records into the passage index, with de-duplication and incremental adds.

Each document is chunked into overlapping passages of whole sentences. A document whose normalised
text is already indexed is skipped as a duplicate; a document whose id is already indexed with other
text replaces the old version; a passage whose text is already indexed (from another document) is
not stored twice. Every call commits once at the end, so a serving process sees all of it or none.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from backends.search.index import SCHEMA_VERSION, WRITER_HEAP_BYTES, index_exists, open_index
from backends.search.readers import SUPPORTED_SUFFIXES, RawDocument, Skip, read_path
from backends.search.text import chunk_text, content_hash
from router.core.errors import TierUnavailableError

logger = logging.getLogger(__name__)

DEMO_MARKER = "frugal-demo.json"
MAX_WORDS = 160
OVERLAP_SENTENCES = 1


@dataclass
class IngestSummary:
    """What an ingest did: documents and passages added, and what was skipped with the reason."""

    docs: int = 0
    passages: int = 0
    replaced: int = 0
    duplicates: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data."""
        return {
            "docs": self.docs,
            "passages": self.passages,
            "replaced": self.replaced,
            "duplicates": self.duplicates,
            "skipped": [{"path": where, "reason": reason} for where, reason in self.skipped],
        }


def _expand(paths: Sequence[Path], summary: IngestSummary) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if any(part.startswith(".") for part in child.relative_to(path).parts):
                    continue
                if child.suffix.lower() in SUPPORTED_SUFFIXES:
                    files.append(child)
        elif path.is_file():
            files.append(path)
        else:
            summary.skipped.append((str(path), "no such file or directory"))
    return files


def _exists(searcher: Any, field_name: str, value: str) -> bool:
    return bool(searcher.doc_freq(field_name, value))


class _Writer:
    """Adds documents to an open index, tracking hashes seen in this batch."""

    def __init__(self, index: Any, summary: IngestSummary) -> None:
        import tantivy

        self._tantivy = tantivy
        self.index = index
        self.searcher = index.searcher()
        try:
            self.writer = index.writer(WRITER_HEAP_BYTES, 1)
        except ValueError as exc:
            if "LockBusy" not in str(exc):
                raise
            raise TierUnavailableError(
                "another process is writing to this search index; run `frugal index add` again when it is done",
                code="index_busy",
            ) from exc
        self.summary = summary
        self.batch_doc_hashes: set[str] = set()
        self.batch_passage_hashes: set[str] = set()
        self.batch_ids: set[str] = set()

    def add(self, doc: RawDocument) -> None:
        doc_hash = content_hash(f"{doc.title}\n{doc.text}")
        if doc_hash in self.batch_doc_hashes or _exists(self.searcher, "doc_hash", doc_hash):
            self.summary.duplicates += 1
            return
        if doc.id in self.batch_ids:
            self.summary.skipped.append((doc.source, f"duplicate id {doc.id!r} in this batch; kept the first"))
            return
        replaced_hashes: set[str] = set()
        if _exists(self.searcher, "doc_id", doc.id):
            # The old passages go at commit; the searcher still sees them, so they must not count as
            # already indexed, or an unchanged passage would be skipped here and then deleted.
            replaced_hashes = self._passage_hashes(doc.id)
            self.writer.delete_documents_by_term("doc_id", doc.id)
            self.summary.replaced += 1
        self.batch_ids.add(doc.id)
        self.batch_doc_hashes.add(doc_hash)
        first = True
        for number, passage in enumerate(chunk_text(doc.text, max_words=MAX_WORDS, overlap=OVERLAP_SENTENCES)):
            passage_hash = content_hash(passage)
            if passage_hash in self.batch_passage_hashes:
                continue
            if passage_hash not in replaced_hashes and _exists(self.searcher, "hash", passage_hash):
                continue
            self.batch_passage_hashes.add(passage_hash)
            fields = {
                "id": f"{doc.id}#{number}", "doc_id": doc.id, "title": doc.title, "text": passage,
                "source": doc.source, "hash": passage_hash, "doc_hash": doc_hash,
            }
            if doc.url:
                fields["url"] = doc.url
            document = self._tantivy.Document(**fields)
            document.add_unsigned("chunk", number)
            if first:
                document.add_unsigned("first", 1)
            self.writer.add_document(document)
            self.summary.passages += 1
            first = False
        if first:
            self.summary.duplicates += 1
        else:
            self.summary.docs += 1

    def _passage_hashes(self, doc_id: str) -> set[str]:
        """Hashes of the passages the index holds for ``doc_id``."""
        query = self._tantivy.Query.term_query(self.index.schema, "doc_id", doc_id)
        count = self.searcher.search(query, limit=1, count=True).count
        hits = self.searcher.search(query, limit=max(1, count), count=False).hits
        return {str(self.searcher.doc(address)["hash"][0]) for _score, address in hits}

    def commit(self) -> None:
        self.writer.commit()
        self.writer.wait_merging_threads()


def ingest_documents(
    index_dir: Path, documents: Iterable[RawDocument | Skip], *, progress: Any = None
) -> IngestSummary:
    """Add documents (and record skips) to the index in ``index_dir``, creating it if needed; one commit."""
    summary = IngestSummary()
    writer = _Writer(open_index(Path(index_dir), create=True), summary)
    for item in documents:
        if isinstance(item, Skip):
            summary.skipped.append((item.where, item.reason))
        else:
            writer.add(item)
        if progress is not None:
            progress()
    writer.commit()
    logger.info("ingested %d docs, %d passages into %s", summary.docs, summary.passages, index_dir)
    return summary


def _documents(files: list[Path], title_field: str, text_field: str, advance: Any) -> Iterator[RawDocument | Skip]:
    for path in files:
        yield from read_path(path, title_field=title_field, text_field=text_field)
        advance(path)


def ingest_paths(
    index_dir: Path,
    paths: Sequence[Path],
    *,
    title_field: str = "title",
    text_field: str = "text",
    progress: bool = True,
) -> IngestSummary:
    """Ingest files and folders (recursively) of every supported format into the index in ``index_dir``."""
    summary = IngestSummary()
    files = _expand(paths, summary)
    if not progress:
        result = ingest_documents(index_dir, _documents(files, title_field, text_field, lambda _p: None))
    else:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("indexing"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
            TextColumn("{task.fields[docs]} docs"), TimeElapsedColumn(), transient=False,
        ) as bar:
            task = bar.add_task("index", total=len(files), docs=0)
            counter = {"docs": 0}

            def advance(_path: Path) -> None:
                bar.update(task, advance=1, docs=counter["docs"])

            def tick() -> None:
                counter["docs"] += 1
                if counter["docs"] % 500 == 0:
                    bar.update(task, docs=counter["docs"])

            result = ingest_documents(index_dir, _documents(files, title_field, text_field, advance), progress=tick)
    result.skipped[:0] = summary.skipped
    return result


def index_stats(index_dir: Path) -> dict[str, Any]:
    """Counts and size of the index in ``index_dir`` (``exists: False`` when there is none)."""
    import tantivy

    index_dir = Path(index_dir)
    if not index_exists(index_dir):
        return {"index_dir": str(index_dir), "exists": False, "docs": 0, "passages": 0, "size_bytes": 0}
    index = open_index(index_dir)
    searcher = index.searcher()
    docs = searcher.search(tantivy.Query.term_query(index.schema, "first", 1), limit=1, count=True).count
    size = sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file())
    marker = _read_marker(index_dir)
    return {
        "index_dir": str(index_dir),
        "exists": True,
        "docs": docs,
        "passages": searcher.num_docs,
        "segments": searcher.num_segments,
        "size_bytes": size,
        "schema_version": SCHEMA_VERSION,
        "demo": marker is not None,
    }


def _demo_files() -> list[tuple[str, bytes]]:
    root = resources.files("backends.search").joinpath("demo")
    return sorted((entry.name, entry.read_bytes()) for entry in root.iterdir() if entry.name.endswith(".md"))


def demo_fingerprint() -> str:
    """A hash of the shipped demo documents and the index layout; a change means rebuild."""
    digest = hashlib.sha256(f"schema={SCHEMA_VERSION};words={MAX_WORDS};overlap={OVERLAP_SENTENCES}".encode())
    for name, data in _demo_files():
        digest.update(name.encode() + b"\0" + data)
    return digest.hexdigest()


def _demo_documents(files: list[Path]) -> Iterator[RawDocument | Skip]:
    """The demo documents with stable ids and no file URLs (the package may live anywhere)."""
    for path in files:
        for item in read_path(path, title_field="title", text_field="text"):
            if isinstance(item, RawDocument):
                section = item.id.rpartition("#")[2]
                item = replace(item, id=f"demo/{path.name}#{section}", url=None, source="frugal-demo")
            yield item


def _read_marker(index_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((index_dir / DEMO_MARKER).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def build_demo_index(index_dir: Path) -> IngestSummary:
    """Build the demo index from the shipped Frugal docs and FAQ; does nothing when it is already current.

    An existing index that is not a demo index (the operator's own) is left untouched.
    """
    index_dir = Path(index_dir)
    fingerprint = demo_fingerprint()
    marker = _read_marker(index_dir)
    if index_exists(index_dir):
        if marker is None:
            logger.info("%s holds an operator index; not building the demo index", index_dir)
            return IngestSummary(skipped=[(str(index_dir), "an index that is not the demo index exists here")])
        if marker.get("fingerprint") == fingerprint:
            return IngestSummary()
        logger.info("demo documents changed; rebuilding the demo index in %s", index_dir)
    if index_dir.exists() and (marker is not None or not any(index_dir.iterdir())):
        shutil.rmtree(index_dir)
    elif index_dir.exists():
        return IngestSummary(skipped=[(str(index_dir), "directory is not empty and holds no demo index")])
    with resources.as_file(resources.files("backends.search").joinpath("demo")) as demo_dir:
        summary = ingest_documents(index_dir, _demo_documents(sorted(demo_dir.glob("*.md"))))
    (index_dir / DEMO_MARKER).write_text(json.dumps({"fingerprint": fingerprint}), encoding="utf-8")
    return summary
