"""The ledger's tables as the code reads and writes them today (the migrations create them).

``requests`` holds one row per request; ``request_rollup`` holds per-hour, per-route sums kept in the
same transaction as each insert, so that a report over millions of requests reads thousands of rows.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, DateTime, Float, Integer, MetaData, String, Table, Text

FLOAT_COLUMNS = (
    "score_search", "score_small", "score_large", "decision_ms", "latency_ms",
    "energy_wh", "energy_wh_min", "energy_wh_max", "co2e_g", "co2e_g_min", "co2e_g_max", "cost_usd",
    "cf_energy_wh", "cf_energy_wh_min", "cf_energy_wh_max", "cf_co2e_g", "cf_co2e_g_min", "cf_co2e_g_max",
    "cf_cost_usd",
)


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
        Column("prompt_text", Text),
        Column("answer_text", Text),
    )


ROLLUP_FLAGS = ("long_prompt", "unknown_model", "unknown_price")
ROLLUP_SUMS = (
    "energy_wh", "energy_wh_min", "energy_wh_max", "co2e_g", "co2e_g_min", "co2e_g_max", "cost_usd",
    "cf_energy_wh", "cf_energy_wh_min", "cf_energy_wh_max", "cf_co2e_g", "cf_co2e_g_min", "cf_co2e_g_max", "cf_cost_usd",
)
ROLLUP_COUNTS = ("requests", "succeeded", "escalations", "escalated", *(f"flag_{f}" for f in ROLLUP_FLAGS))
UNROUTED = "none"


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
