"""The on-disk tantivy index: its schema, and a handle that is safe to share between threads.

One tantivy document per *passage* (a chunk of a source document), carrying its document's id,
title, url and source, plus content hashes for de-duplication. Readers never block each other: a
searcher is taken under a short lock and used outside it. Writers (the CLI, possibly in another
process while the server runs) commit; :meth:`SearchIndex.searcher` notices the new ``meta.json``
(tantivy writes it anew, so its inode changes with every commit) and reloads, so incremental adds become
visible without a restart. Between commits every lookup shares one searcher (a snapshot of the index, safe to
share between threads) instead of taking a new one.

A read-only index directory (a ``:ro`` volume shared by replicas) cannot be opened in place: tantivy
takes a lock file beside ``meta.json`` even to read. Such a directory is served through a *view*: a
private temporary directory of symlinks to its files, where tantivy can keep its lock files.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
TEXT_TOKENIZER = "en_stem"
WRITER_HEAP_BYTES = 64_000_000
LOCK_PREFIX = ".tantivy-"  # tantivy's lock files: real files in a view, never links to the source


def build_schema() -> Any:
    """The passage schema: analyzed title/text, raw ids, urls and hashes, and counters."""
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw")
    builder.add_text_field("doc_id", stored=True, tokenizer_name="raw")
    builder.add_text_field("title", stored=True, tokenizer_name=TEXT_TOKENIZER)
    builder.add_text_field("text", stored=True, tokenizer_name=TEXT_TOKENIZER)
    builder.add_text_field("url", stored=True, tokenizer_name="raw")
    builder.add_text_field("source", stored=True, tokenizer_name="raw")
    builder.add_text_field("hash", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("doc_hash", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_unsigned_field("chunk", stored=True, indexed=True)
    builder.add_unsigned_field("first", stored=False, indexed=True)
    return builder.build()


def index_exists(index_dir: Path) -> bool:
    """Whether ``index_dir`` holds a tantivy index (without opening it)."""
    return (Path(index_dir) / "meta.json").is_file()


def open_index(index_dir: Path, *, create: bool = False) -> Any:
    """Open the tantivy index in ``index_dir`` (creating the directory and index when ``create``)."""
    import tantivy

    index_dir = Path(index_dir)
    if not create and not index_exists(index_dir):
        raise FileNotFoundError(f"no search index in {index_dir}")
    index_dir.mkdir(parents=True, exist_ok=True)
    index = tantivy.Index(build_schema(), path=str(index_dir), reuse=True)
    _check_schema(index, index_dir)
    return index


def _check_schema(index: Any, index_dir: Path) -> None:
    """Refuse an index whose fields are not ours (a different tool's index in the same place)."""
    probe = index.searcher()
    for field in ("id", "doc_id", "title", "text", "hash"):
        try:
            probe.doc_freq(field, "x")
        except ValueError as exc:
            raise ValueError(f"{index_dir} holds a tantivy index without field {field!r}") from exc


def sync_view(source: Path, view: Path) -> None:
    """Mirror ``source``'s index files into ``view`` as symlinks (dropping links to files that went away)."""
    names = {p.name for p in source.iterdir() if p.is_file() and not p.name.startswith(LOCK_PREFIX)}
    for link in view.iterdir():
        if link.is_symlink() and link.name not in names:
            link.unlink()
    for name in names:
        link = view / name
        if not link.is_symlink():
            link.symlink_to(source / name)


class SearchIndex:
    """A shared handle on one index directory; reloads its searcher when another writer commits."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = Path(index_dir)
        self._lock = threading.Lock()
        self._index: Any = None
        self._searcher: Any = None  # on the commit ``_meta_stamp`` names
        self._meta_path = str(self.index_dir / "meta.json")
        self._meta_stamp: tuple[int, int, int] | None = None
        self.view_dir: Path | None = None  # set when the index directory is read-only

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            stat = os.stat(self._meta_path)
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def open(self) -> None:
        """Open the index now; raises FileNotFoundError or ValueError when it is missing or unusable."""
        with self._lock:
            self._open_locked()

    def _open_locked(self) -> None:
        stamp = self._stamp()
        if stamp is None:
            raise FileNotFoundError(f"no search index in {self.index_dir}")
        self._index = open_index(self._readable_dir())
        self._searcher = self._index.searcher()
        self._meta_stamp = stamp

    def _readable_dir(self) -> Path:
        """The directory tantivy opens: the index itself, or a symlink view of it when it is read-only."""
        if os.access(self.index_dir, os.W_OK):
            return self.index_dir
        if self.view_dir is None:
            self.view_dir = Path(tempfile.mkdtemp(prefix="frugal-index-view-"))
            logger.info("search index in %s is read-only; serving it through %s", self.index_dir, self.view_dir)
        sync_view(self.index_dir, self.view_dir)
        return self.view_dir

    @property
    def is_open(self) -> bool:
        """Whether an index is currently open."""
        return self._index is not None

    def searcher(self) -> tuple[Any, Any]:
        """The index and a searcher on its latest commit (opening or reloading as needed)."""
        stamp = self._stamp()
        with self._lock:
            if self._index is None:
                self._open_locked()
            elif stamp is not None and stamp != self._meta_stamp:
                logger.info("search index in %s changed; reloading", self.index_dir)
                if self.view_dir is not None:
                    sync_view(self.index_dir, self.view_dir)
                self._index.reload()
                self._searcher = self._index.searcher()
                self._meta_stamp = stamp
            return self._index, self._searcher

    def close(self) -> None:
        """Drop the tantivy handle (the files stay)."""
        with self._lock:
            self._index = None
            self._searcher = None
            self._meta_stamp = None
            if self.view_dir is not None:
                shutil.rmtree(self.view_dir, ignore_errors=True)
                self.view_dir = None
