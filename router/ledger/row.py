"""One ledger row per answered (or failed) request: the facts the report is computed from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class LedgerRow:
    """Everything recorded about one request; prompt and answer text only when the operator enables it."""

    request_id: str
    created_at: datetime
    requested_model: str
    route: str | None
    forced: bool
    status: int
    client_key_id: str | None = None
    error_code: str | None = None
    escalations: int = 0
    attempts: list[dict[str, object]] = field(default_factory=list)
    score_search: float | None = None
    score_small: float | None = None
    score_large: float | None = None
    decision_ms: float = 0.0
    latency_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    energy_wh: float = 0.0
    energy_wh_min: float = 0.0
    energy_wh_max: float = 0.0
    co2e_g: float = 0.0
    cost_usd: float = 0.0
    cf_energy_wh: float = 0.0
    cf_energy_wh_min: float = 0.0
    cf_energy_wh_max: float = 0.0
    cf_co2e_g: float = 0.0
    cf_cost_usd: float = 0.0
    flags: list[str] = field(default_factory=list)
    prompt_text: str | None = None
    answer_text: str | None = None
