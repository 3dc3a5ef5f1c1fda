"""The ledger interface: every question the report, dashboard, calibration and admin ask of storage.

``LedgerStore`` is what the rest of Frugal types the ledger as; only its implementations
(``router.ledger.store.Ledger`` over SQL, ``router.ledger.spool.SpooledLedger`` in front of it) write SQL.
Answers are plain values and the dataclasses below, never database objects, so a caller cannot tell
SQLite from PostgreSQL and a test double needs no database. Times given to it may be aware or naive
(naive is taken as UTC); times it returns are aware UTC, except where a field says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from router.ledger.row import LedgerRow

#: The route of a request that no tier answered, in totals and series.
UNROUTED = "none"

#: Prefix of the flag of a request a cheaper tier answered in place of another (``degraded:large-unavailable``).
DEGRADED = "degraded:"

#: Flags counted per (day, route) and per hour: the energy estimate's caveats.
COUNTED_FLAGS: tuple[str, ...] = ("long_prompt", "unknown_model", "unknown_price")


@dataclass
class DayRouteTotals:
    """Counts and energy sums of the requests of one UTC day that ended on one route."""

    day: str
    route: str
    requests: int = 0
    succeeded: int = 0
    escalations: int = 0
    escalated: int = 0
    degraded: int = 0  # answered by a cheaper tier because the tier they needed was unavailable
    flags: dict[str, int] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class HourRouteEnergy:
    """Requests and actual/counterfactual energy of one UTC hour (``YYYY-MM-DDTHH``) and route."""

    hour: str
    route: str
    requests: int
    energy_wh: float
    cf_energy_wh: float


@dataclass(frozen=True)
class TierEnergy:
    """How many successful, non-escalated requests ended on a tier, and their mean energy (Wh)."""

    requests: int
    mean_wh: float


#: The sums a what-if replay cell carries: energy (and bounds), counterfactual, cost and unreturned work.
REPLAY_SUMS: tuple[str, ...] = (
    "energy_wh", "energy_wh_min", "energy_wh_max", "cf_energy_wh", "cf_energy_wh_min", "cf_energy_wh_max",
    "cost_usd", "cf_cost_usd", "escalation_energy_wh",
)

#: Why a request of the period is not replayed, in the order the reasons are tested.
REPLAY_EXCLUDED: tuple[str, ...] = ("forced", "failed", "unscored", "no_first_tier")


@dataclass(frozen=True)
class ReplayCell:
    """Replayed requests alike in first tier, final route, degraded, escalated and the proposed first tier."""

    first_tier: str
    route: str
    degraded: bool
    escalated: bool
    proposed: str
    requests: int
    sums: dict[str, float]


@dataclass(frozen=True)
class ReplayCells:
    """A what-if replay's cells, and how many requests of the period were left out and why (``REPLAY_EXCLUDED``)."""

    cells: list[ReplayCell]
    excluded: dict[str, int]


@dataclass(frozen=True)
class ThresholdChange:
    """One committed threshold change: its version, who, when (naive UTC), why, and old/new per threshold."""

    version: int
    actor: str
    reason: str
    changed_at: datetime
    changes: dict[str, tuple[float | None, float]]
    values: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The change as JSON."""
        return {
            "version": self.version, "actor": self.actor, "reason": self.reason,
            "changed_at": self.changed_at.replace(tzinfo=UTC).isoformat(),
            "changes": {name: {"old": old, "new": new} for name, (old, new) in self.changes.items()},
        }


@runtime_checkable
class LedgerStore(Protocol):
    """Where requests are recorded and every figure about them is read; raises ``LedgerUnavailableError``."""

    def record(self, row: LedgerRow) -> None:
        """Write one row (before its request is answered)."""
        ...

    def record_many(self, rows: list[LedgerRow]) -> None:
        """Write several rows in one transaction."""
        ...

    def rows(self, since: datetime | None = None, until: datetime | None = None) -> Iterator[LedgerRow]:
        """Rows with ``since <= created_at < until``, oldest first, streamed."""
        ...

    def recent(self, limit: int, *, client: str | None = None) -> list[LedgerRow]:
        """The ``limit`` most recent rows (of one client key id), newest first."""
        ...

    def recent_large_output_tokens(self, limit: int) -> list[int]:
        """Output tokens of the ``limit`` most recent answered large-tier requests, oldest first."""
        ...

    def recorded_request_ids(self, request_ids: Sequence[str]) -> set[str]:
        """Those of ``request_ids`` that already have a row."""
        ...

    def day_route_totals(self, since: datetime | None = None, until: datetime | None = None, *,
                         client: str | None = None) -> list[DayRouteTotals]:
        """Per (UTC day, route) counts and ``ENERGY_COLUMNS`` sums of a period (of one client key id)."""
        ...

    def first_and_last_times(self, since: datetime | None = None, until: datetime | None = None, *,
                             client: str | None = None) -> tuple[datetime | None, datetime | None]:
        """Creation times of the first and the last request of a period (of one client key id)."""
        ...

    def hourly_route_energy(self, since: datetime, *, client: str | None = None) -> list[HourRouteEnergy]:
        """Per (UTC hour, route) requests and energy from ``since`` on (of one client key id)."""
        ...

    def degraded_request_count(self, since: datetime, *, client: str | None = None) -> int:
        """Requests from ``since`` on (of one client key id) with a ``degraded:…`` flag."""
        ...

    def tier_energy_means(self, since: datetime) -> dict[str, TierEnergy]:
        """Per route: successful, non-escalated requests from ``since`` on and their mean energy."""
        ...

    def logged_scores(self, since: datetime | None, limit: int) -> list[tuple[float, float, float]]:
        """(search, small, large) scores of the ``limit`` most recent classified, not forced, requests."""
        ...

    def replay_cells(self, route_large: float, route_search: float, since: datetime | None = None,
                     until: datetime | None = None) -> ReplayCells:
        """One scan: scored, not forced, answered requests per cell, their first tier under proposed thresholds."""
        ...

    def threshold_version(self) -> int:
        """The persisted thresholds' version (0 before any change)."""
        ...

    def persisted_thresholds(self) -> tuple[int, dict[str, float]]:
        """The version and every persisted threshold value, read consistently."""
        ...

    def save_thresholds(self, changes: Mapping[str, float], *, actor: str, reason: str,
                        fallback: Mapping[str, float]) -> ThresholdChange:
        """Persist validated ``changes`` as one new audited version; ``fallback`` gives never-persisted old values."""
        ...

    def threshold_history(self, limit: int = 100) -> list[ThresholdChange]:
        """The most recent ``limit`` threshold changes, newest first."""
        ...

    def ping(self) -> bool:
        """True when the database answers."""
        ...

    def close(self) -> None:
        """Release the database (and stop any background work)."""
        ...
