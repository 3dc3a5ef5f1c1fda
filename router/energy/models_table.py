"""The explicit table from litellm model names to what EcoLogits computes them as.

EcoLogits' own name matcher maps provider-prefixed, dated or tagged litellm names wrongly or not at
all; this table makes every mapping reviewable and flags the names it does not know. The file format
is documented at the top of ``config/energy_models.yaml``.
"""

from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from router.core.errors import FrugalError

log = logging.getLogger(__name__)

Bounds = tuple[float, float]


class EnergyTableError(FrugalError):
    """The energy model table is missing or invalid."""


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    active: float | tuple[float, float]
    total: float | tuple[float, float] | None = None


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    match: str | None = None
    ecologits: str | None = None
    params: _Params | None = None
    datacenter: str = "huggingface_hub"
    zone: str | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> _Entry:
        if (self.ecologits is None) == (self.params is None):
            raise ValueError("an entry needs exactly one of 'ecologits' or 'params'")
        if self.ecologits is not None and "/" not in self.ecologits:
            raise ValueError(f"'ecologits' must be provider/name, got {self.ecologits!r}")
        return self


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    default: _Entry
    models: dict[str, _Entry] = Field(default_factory=dict)
    patterns: list[_Entry] = Field(default_factory=list)


def _bounds(value: float | tuple[float, float]) -> Bounds:
    if isinstance(value, tuple):
        low, high = value
        if not 0 < low <= high:
            raise EnergyTableError(f"parameter range must satisfy 0 < min <= max, got {value}")
        return (float(low), float(high))
    if value <= 0:
        raise EnergyTableError(f"parameter count must be > 0, got {value}")
    return (float(value), float(value))


@dataclass(frozen=True)
class ModelSpec:
    """What one model name resolves to: an EcoLogits model, or parameter ranges in billions."""

    name: str
    matched_by: str  # "exact", "pattern:<glob>" or "default"
    ecologits_provider: str | None = None
    ecologits_model: str | None = None
    active_b: Bounds | None = None
    total_b: Bounds | None = None
    datacenter: str = "huggingface_hub"
    zone: str | None = None
    note: str | None = None

    @property
    def known(self) -> bool:
        """False when the name fell through to the table's default range."""
        return self.matched_by != "default"


class ModelsTable:
    """Resolves litellm model names to ``ModelSpec`` through exact names, stripped prefixes and globs."""

    def __init__(self, table: _Table, source: str) -> None:
        self.source = source
        self._default = table.default
        self._models = {name.lower(): entry for name, entry in table.models.items()}
        self._patterns = [(entry.match.lower(), entry) for entry in table.patterns if entry.match]
        if len(self._patterns) != len(table.patterns):
            raise EnergyTableError(f"{source}: every entry under 'patterns' needs a 'match' glob")
        self._cache: dict[str, ModelSpec] = {}

    @classmethod
    def load(cls, path: Path) -> ModelsTable:
        """Read and validate a table file; raise ``EnergyTableError`` naming the problem."""
        import yaml

        if not path.is_file():
            raise EnergyTableError(f"energy model table not found at {path}; set energy.models_table to a YAML file")
        try:
            raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
            table = _Table.model_validate(raw)
        except (yaml.YAMLError, ValidationError) as exc:
            raise EnergyTableError(f"invalid energy model table {path}: {exc}") from exc
        return cls(table, str(path))

    def entries(self) -> list[tuple[str, ModelSpec]]:
        """Every named entry and pattern resolved, for validation and docs."""
        out = [(name, self._spec(name, "exact", entry)) for name, entry in self._models.items()]
        out += [(glob, self._spec(glob, f"pattern:{glob}", entry)) for glob, entry in self._patterns]
        out.append(("<default>", self._spec("<default>", "default", self._default)))
        return out

    def resolve(self, name: str) -> ModelSpec:
        """The spec for a litellm model name; never raises, unknown names get the flagged default."""
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        spec = self._resolve(name)
        if len(self._cache) < 4096:
            self._cache[name] = spec
        if not spec.known:
            log.warning("model %r is not in the energy table %s; using the default range", name, self.source)
        return spec

    def _resolve(self, name: str) -> ModelSpec:
        lowered = name.strip().lower()
        candidates = [lowered]
        rest = lowered
        while "/" in rest:
            rest = rest.split("/", 1)[1]
            candidates.append(rest)
        for candidate in candidates:
            entry = self._models.get(candidate)
            if entry is not None:
                return self._spec(name, "exact", entry)
        for glob, entry in self._patterns:
            if any(fnmatch.fnmatchcase(candidate, glob) for candidate in candidates):
                return self._spec(name, f"pattern:{glob}", entry)
        return self._spec(name, "default", self._default)

    @staticmethod
    def _spec(name: str, matched_by: str, entry: _Entry) -> ModelSpec:
        if entry.ecologits is not None:
            provider, model = entry.ecologits.split("/", 1)
            return ModelSpec(name, matched_by, provider, model, zone=entry.zone, note=entry.note, datacenter=provider)
        assert entry.params is not None
        active = _bounds(entry.params.active)
        total = _bounds(entry.params.total) if entry.params.total is not None else active
        return ModelSpec(
            name, matched_by, active_b=active, total_b=total, datacenter=entry.datacenter, zone=entry.zone, note=entry.note
        )
