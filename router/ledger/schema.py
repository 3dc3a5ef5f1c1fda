"""The ledger's tables as the code reads and writes them today (the migrations create them).

``requests`` holds one row per request; ``request_rollup`` holds per-hour, per-route sums kept in the
same transaction as each insert, so that a report over millions of requests reads thousands of rows.
The energy columns of both come from ``router.ledger.row.ENERGY_COLUMNS``. The threshold tables hold
the live thresholds every worker and replica shares, and their audit trail (migration ``0003``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, Column, DateTime, Float, Integer, MetaData, String, Table, Text

from router.ledger.interface import COUNTED_FLAGS, UNROUTED
from router.ledger.row import ENERGY_COLUMNS

FLOAT_COLUMNS = ("score_search", "score_small", "score_large", "decision_ms", "latency_ms", *ENERGY_COLUMNS)

ROLLUP_FLAGS = COUNTED_FLAGS
#: The same sums over the degraded requests only, so that savings can be stated net of them (migration 0005).
DEGRADED_SUMS = tuple(f"degraded_{name}" for name in ENERGY_COLUMNS)
ROLLUP_SUMS = (*ENERGY_COLUMNS, *DEGRADED_SUMS, "escalation_energy_wh")
ROLLUP_COUNTS = ("requests", "succeeded", "escalations", "escalated", "degraded",
                 *(f"flag_{f}" for f in ROLLUP_FLAGS))

__all__ = [
    "DEGRADED_SUMS", "FLOAT_COLUMNS", "ROLLUP_COUNTS", "ROLLUP_FLAGS", "ROLLUP_SUMS", "UNROUTED", "LedgerTables", "hour_key",
    "requests_table", "rollup_table",
]


def requests_table(meta: MetaData) -> Table:
    """The ``requests`` table: one row per request (see migration ``0001_requests``)."""
    return Table(
        "requests",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("request_id", String(64), nullable=False),
        Column("created_at", DateTime(timezone=False), nullable=False),
        Column("day", String(10), nullable=False),
        Column("client_key_id", String(128)),
        Column("requested_model", String(200), nullable=False),
        Column("route", String(16)),
        Column("forced", Boolean, nullable=False),
        Column("status", Integer, nullable=False),
        Column("error_code", String(64)),
        Column("escalations", Integer, nullable=False),
        Column("attempts", Text, nullable=False),
        Column("prompt_tokens", Integer, nullable=False),
        Column("completion_tokens", Integer, nullable=False),
        *(Column(name, Float, nullable=name.startswith("score_")) for name in FLOAT_COLUMNS),
        Column("flags", Text, nullable=False),
        Column("escalation_energy_wh", Float, nullable=False),
        Column("first_tier", String(16)),
        Column("cpu_energy_wh", Float),
        Column("prompt_text", Text),
        Column("answer_text", Text),
    )


def hour_key(moment: datetime) -> str:
    """The rollup bucket of a naive-UTC time: ``YYYY-MM-DDTHH``."""
    return moment.strftime("%Y-%m-%dT%H")


def rollup_table(meta: MetaData) -> Table:
    """``request_rollup``: per UTC hour and final route, the sums the report needs (migration ``0002``)."""
    return Table(
        "request_rollup",
        meta,
        Column("hour", String(13), primary_key=True),
        Column("route", String(16), primary_key=True),
        Column("day", String(10), nullable=False),
        *(Column(name, Integer, nullable=False) for name in ROLLUP_COUNTS),
        *(Column(name, Float, nullable=False) for name in ROLLUP_SUMS),
    )


@dataclass(frozen=True)
class LedgerTables:
    """Every table of the ledger database, bound to one ``MetaData``."""

    requests: Table
    rollup: Table
    threshold_state: Table
    threshold_values: Table
    threshold_audit: Table

    @classmethod
    def build(cls, meta: MetaData) -> LedgerTables:
        """The tables as the migrations created them."""
        state = Table("threshold_state", meta, Column("id", Integer, primary_key=True),
                      Column("version", Integer, nullable=False))
        values = Table("threshold_values", meta, Column("name", String(100), primary_key=True),
                       Column("value", Float, nullable=False), Column("version", Integer, nullable=False),
                       Column("updated_at", DateTime(timezone=False), nullable=False))
        audit = Table("threshold_audit", meta, Column("id", Integer, primary_key=True, autoincrement=True),
                      Column("version", Integer, nullable=False),
                      Column("changed_at", DateTime(timezone=False), nullable=False),
                      Column("actor", String(200), nullable=False), Column("reason", Text, nullable=False),
                      Column("name", String(100), nullable=False), Column("old_value", Float),
                      Column("new_value", Float, nullable=False))
        return cls(requests_table(meta), rollup_table(meta), state, values, audit)
