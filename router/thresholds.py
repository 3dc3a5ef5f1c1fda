"""The named thresholds the policy and the tier gates read, validated and swapped atomically.

Every threshold an admin may tune is declared here once with its range, so validation, the admin API,
the CLI and the docs all list the same names. Updates replace the whole mapping at once: a request
sees either the old values or the new ones, never a mix.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from router.errors import UnprocessableError


@dataclass(frozen=True)
class ThresholdSpec:
    """One tunable threshold: its name, default, valid range and meaning."""

    name: str
    default: float
    min: float
    max: float
    description: str

    def to_dict(self) -> dict[str, object]:
        """The spec as JSON."""
        return {"name": self.name, "default": self.default, "min": self.min, "max": self.max,
                "description": self.description}


GATE_THRESHOLDS: tuple[ThresholdSpec, ...] = (
    ThresholdSpec(
        "search.min_confidence", 0.65, 0.0, 1.0,
        "search answers with a retrieval confidence below this escalate to the next tier",
    ),
    ThresholdSpec(
        "small.min_confidence", 0.5, 0.0, 1.0,
        "small-model answers with a self-check confidence below this escalate to the large tier",
    ),
)


def all_specs() -> tuple[ThresholdSpec, ...]:
    """Every threshold: the routing policy's and the tier gates'."""
    from router.policy import POLICY_THRESHOLDS

    return tuple(POLICY_THRESHOLDS.values()) + GATE_THRESHOLDS


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
        problems: list[str] = []
        clean: dict[str, float] = {}
        for name, raw in changes.items():
            spec = self.specs.get(name)
            if spec is None:
                problems.append(f"unknown threshold {name!r}")
                continue
            try:
                if isinstance(raw, bool):
                    raise TypeError
                value = float(raw)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                problems.append(f"{name} must be a number, got {raw!r}")
                continue
            if math.isnan(value) or not (spec.min <= value <= spec.max):
                problems.append(f"{name}={value} is outside [{spec.min}, {spec.max}]")
                continue
            clean[name] = value
        if problems:
            valid = ", ".join(f"{s.name} [{s.min}, {s.max}]" for s in self.specs.values())
            raise UnprocessableError(f"{'; '.join(problems)}. Valid thresholds: {valid}", param="thresholds")
        return clean

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


def policy_values(values: Mapping[str, float]) -> dict[str, float]:
    """The subset of threshold values the routing policy reads."""
    from router.policy import POLICY_THRESHOLDS

    return {name: value for name, value in values.items() if name in POLICY_THRESHOLDS}
