"""One ledger row per answered (or failed) request: the facts the report is computed from.

The energy, CO2e and cost figures are defined once, in ``ENERGY_MEASURES`` and ``ENERGY_SCENARIOS``;
``ENERGY_COLUMNS`` (generated from them) names the row's fields, the ``requests`` table's columns and the
hourly rollup's sums. ``LedgerRow`` spells its fields out so that type checkers see them; a test checks
that they match ``ENERGY_COLUMNS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router.core.estimate import Estimate

#: Each figure recorded per request, and whether it has ``_min``/``_max`` bounds (an ``Estimate`` ``Range``).
ENERGY_MEASURES: tuple[tuple[str, bool], ...] = (("energy_wh", True), ("co2e_g", True), ("cost_usd", False))

#: Column prefixes: ``""`` for the request as routed, ``"cf_"`` for the all-large counterfactual.
ENERGY_SCENARIOS: tuple[str, ...] = ("", "cf_")

#: Every energy, CO2e and cost column, in table order: energy_wh, energy_wh_min, ..., cf_cost_usd.
ENERGY_COLUMNS: tuple[str, ...] = tuple(
    f"{scenario}{measure}{bound}"
    for scenario in ENERGY_SCENARIOS
    for measure, ranged in ENERGY_MEASURES
    for bound in (("", "_min", "_max") if ranged else ("",))
)

#: Bound columns a row may leave as None, each with the central column it then defaults to.
RANGE_FALLBACKS: dict[str, str] = {
    f"{scenario}{measure}{bound}": f"{scenario}{measure}"
    for scenario in ENERGY_SCENARIOS
    for measure, ranged in ENERGY_MEASURES if ranged
    for bound in ("_min", "_max")
}


def unreturned_energy(route: str | None, attempts: list[dict[str, object]]) -> float:
    """Wh of the attempts whose answer was not returned: all but the last attempt on ``route`` (all, if none)."""
    final = max((i for i, a in enumerate(attempts) if a.get("tier") == route), default=None) if route else None
    spent = (a.get("energy_wh") for i, a in enumerate(attempts) if i != final)
    return sum(float(wh) for wh in spent if isinstance(wh, int | float))


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
    # Energy (Wh, central value) of the attempts whose answer was not returned: insufficient tries before an
    # escalation, and all of a failed request's work (migration 0005).
    escalation_energy_wh: float = 0.0
    # The tier the policy (or a forced model) sent the request to first, and the CPU-time x watts energy of the
    # request's local work: a cross-check of the per-token and per-call estimate (migration 0006).
    first_tier: str | None = None
    cpu_energy_wh: float | None = None

    def apply_estimates(self, actual: Estimate, counterfactual: Estimate) -> LedgerRow:
        """Fill the energy, CO2e, cost and flag fields from the request's and the counterfactual's estimates."""
        for scenario, estimate in zip(ENERGY_SCENARIOS, (actual, counterfactual), strict=True):
            for measure, ranged in ENERGY_MEASURES:
                figure = getattr(estimate, measure)
                if ranged:
                    setattr(self, f"{scenario}{measure}", figure.value)
                    setattr(self, f"{scenario}{measure}_min", figure.min)
                    setattr(self, f"{scenario}{measure}_max", figure.max)
                else:
                    setattr(self, f"{scenario}{measure}", figure)
        self.flags = list(dict.fromkeys([*self.flags, *actual.flags]))
        return self
