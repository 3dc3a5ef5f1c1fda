"""Backends registered by name, built-ins included; each entry is imported only when used.

A factory has the signature ``build(config: TierConfig, *, tier: Tier, data_dir: Path) -> Backend``
and validates ``config.options`` with its own pydantic model, so a bad option fails at start-up with
a message naming the setting.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from router.core import Backend, Tier

BACKEND_FACTORIES: dict[str, str] = {
    "tantivy": "backends.search.backend:build",
    "llamacpp": "backends.llamacpp:build",
    "litellm": "backends.litellm_backend:build",
    "echo": "backends.fake:build",
}


def backend_names() -> list[str]:
    """The registered backend names, sorted."""
    return sorted(BACKEND_FACTORIES)


def build_backend(kind: str, config: Any, *, tier: Tier, data_dir: Path) -> Backend:
    """Build the backend registered as ``kind`` for ``tier``."""
    try:
        target = BACKEND_FACTORIES[kind]
    except KeyError:
        raise ValueError(f"unknown backend {kind!r}; registered backends: {', '.join(backend_names())}") from None
    module_name, _, attr = target.partition(":")
    factory: Callable[..., Backend] = getattr(importlib.import_module(module_name), attr)
    return factory(config, tier=tier, data_dir=data_dir)
