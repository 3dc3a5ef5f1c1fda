"""One ledger row per answered (or failed) request: the facts the report is computed from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router.core.estimate import Estimate


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
    # Added for the report's CO2e ranges; None means "same as the central value".
    co2e_g_min: float | None = None
    co2e_g_max: float | None = None
    cf_co2e_g_min: float | None = None
    cf_co2e_g_max: float | None = None

    def apply_estimates(self, actual: Estimate, counterfactual: Estimate) -> LedgerRow:
        """Fill the energy, CO2e, cost and flag fields from the request's and the counterfactual's estimates."""
        self.energy_wh, self.energy_wh_min, self.energy_wh_max = (
            actual.energy_wh.value, actual.energy_wh.min, actual.energy_wh.max)
        self.co2e_g, self.co2e_g_min, self.co2e_g_max = actual.co2e_g.value, actual.co2e_g.min, actual.co2e_g.max
        self.cost_usd = actual.cost_usd
        self.cf_energy_wh, self.cf_energy_wh_min, self.cf_energy_wh_max = (
            counterfactual.energy_wh.value, counterfactual.energy_wh.min, counterfactual.energy_wh.max)
        self.cf_co2e_g, self.cf_co2e_g_min, self.cf_co2e_g_max = (
            counterfactual.co2e_g.value, counterfactual.co2e_g.min, counterfactual.co2e_g.max)
        self.cf_cost_usd = counterfactual.cost_usd
        self.flags = list(dict.fromkeys([*self.flags, *actual.flags]))
        return self
