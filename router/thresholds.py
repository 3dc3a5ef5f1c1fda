"""The live threshold values, validated against their specs (``router.core.policy``) and swapped atomically.

Updates replace the whole mapping at once, and a request reads one snapshot (``values()``) for its whole
life, so it sees either the old values or the new ones, never a mix.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from router.core.policy import ThresholdSpec, validate_thresholds


class ThresholdStore:
    """The live threshold values, validated against their specs and replaced atomically."""

    def __init__(self, specs: Iterable[ThresholdSpec], overrides: Mapping[str, float] | None = None) -> None:
        self.specs = {spec.name: spec for spec in specs}
        self._lock = threading.Lock()
        values = {name: spec.default for name, spec in self.specs.items()}
        values.update(self.validate(overrides or {}))
        self._values: Mapping[str, float] = MappingProxyType(values)

    def values(self) -> Mapping[str, float]:
        """A read-only snapshot of the current values."""
        return self._values

    def get(self, name: str) -> float:
        """One current value."""
        return self._values[name]

    def validate(self, changes: Mapping[str, object]) -> dict[str, float]:
        """Check names and ranges of ``changes``; raise a 422 that lists the valid names and ranges."""
        return validate_thresholds(changes, self.specs)

    def replace(self, values: Mapping[str, float]) -> None:
        """Install a complete, already validated mapping (e.g. one loaded from shared storage)."""
        with self._lock:
            merged = dict(self._values)
            merged.update(values)
            self._values = MappingProxyType(merged)

    def update(self, changes: Mapping[str, object]) -> tuple[dict[str, float], dict[str, float]]:
        """Validate and apply ``changes`` all at once; return (old, new) values of the changed names."""
        clean = self.validate(changes)
        with self._lock:
            old = {name: self._values[name] for name in clean}
            merged = dict(self._values)
            merged.update(clean)
            self._values = MappingProxyType(merged)
        return old, clean

