"""An index on a read-only file system (a replica's `:ro` volume), through a real read-only bind mount."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.search.backend import SearchOptions, TantivyBackend
from backends.search.index import open_index
from backends.search.ingest import ingest_paths
from router.core import CompletionRequest, Message


def _mount_read_only(source: Path, target: Path) -> str | None:
    """Bind-mount ``source`` read-only at ``target``; the reason when this machine does not allow it."""
    target.mkdir()
    for args in (["mount", "--bind", str(source), str(target)],
                 ["mount", "-o", "remount,bind,ro", str(target)]):
        done = subprocess.run(args, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            subprocess.run(["umount", str(target)], capture_output=True, check=False)
            return f"{' '.join(args)}: {done.stderr.strip()}"
    return None


@pytest.fixture
def read_only_index(index_dir: Path, tmp_path: Path) -> Iterator[Path]:
    """The corpus index, seen through a read-only bind mount."""
    mounted = tmp_path / "ro-index"
    problem = _mount_read_only(index_dir, mounted)
    if problem:
        pytest.skip(f"read-only bind mounts need root with CAP_SYS_ADMIN here ({problem})")
    try:
        yield mounted
    finally:
        subprocess.run(["umount", str(mounted)], capture_output=True, check=False)


def ask(backend: TantivyBackend, question: str) -> str:
    return asyncio.run(backend.complete(CompletionRequest(messages=[Message("user", question)]))).text


def test_the_mount_really_is_read_only(read_only_index: Path) -> None:
    with pytest.raises(OSError, match="Read-only file system"):
        (read_only_index / "probe").write_text("x")
    with pytest.raises(ValueError, match="Read-only"):  # what tantivy does when opened in place
        open_index(read_only_index)


def test_a_read_only_index_is_served_and_follows_updates(read_only_index: Path, index_dir: Path,
                                                         tmp_path: Path) -> None:
    backend = TantivyBackend(tier="search", index_dir=read_only_index, options=SearchOptions())
    health = asyncio.run(backend.health())
    assert health.ready, health.detail
    assert "Gustave Eiffel" in ask(backend, "Who designed the Eiffel Tower?")
    view = backend._index.view_dir
    assert view is not None and (view / "meta.json").is_symlink()
    lock = view / ".tantivy-meta.lock"  # tantivy's reader lock lives in the private view, as a real file
    assert lock.is_file() and not lock.is_symlink()

    # The index is rebuilt elsewhere (the writable side of the volume); the replica picks it up.
    extra = tmp_path / "extra.jsonl"
    extra.write_text(json.dumps({"title": "Australia", "text": "Canberra is the capital city of Australia."}))
    ingest_paths(index_dir, [extra], progress=False)
    assert "Canberra" in ask(backend, "What is the capital of Australia?")

    asyncio.run(backend.aclose())
    assert not view.exists()
