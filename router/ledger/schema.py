"""The ledger's tables as the code reads and writes them today (the migrations create them)."""

from __future__ import annotations

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
