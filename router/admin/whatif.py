"""What-if replay: the route mix, energy and savings the ledger's requests would have had under other thresholds.

A threshold change trades energy against the risk of sending a request that needs the large model to a cheaper
tier; an operator should see that trade on real traffic before applying it. The ledger logs every classified
request's scores, so the routing rule (``Policy.decide``'s thresholds, recomputed in SQL by
``LedgerStore.replay_cells`` in one scan) can be re-run on each; what a request whose first tier changes would
then have cost is predicted from what the same ledger observed. The prediction model:

- Requests whose first tier does not change keep their logged figures.
- A request moving up to the large tier costs its ``cf_energy_wh`` (the configured large model answering it: the
  figure the all-large counterfactual uses) and is no longer an avoided large call.
- A request moving down (large to small or search, small to search) or from search to small costs the observed
  mean energy of the period's non-escalated requests first sent to its new tier, and that tier's observed
  escalation rate p applies: a share p escalates, costing p x its ``cf_energy_wh`` on top (an escalation is
  taken to end on the large tier). Range: best case none escalates, worst case all do.
- Degraded requests (the large tier was needed but unavailable, a cheaper tier answered) keep their logged
  figures whatever their new first tier, since the large tier was unavailable then: they stay degraded and, as in
  the report, count neither as avoided large calls nor in the net savings.
- Under-routing needs outcome labels, which the ledger does not hold: it is ``null`` with the reason, and the
  requests that would move off the large tier are counted as the risk an operator must weigh.

``predict`` is the arithmetic on the cells; ``run_whatif`` validates the proposed thresholds and runs it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from router.admin.calibration import DEFAULT_ENERGY_WH
from router.core import TIERS
from router.core.errors import UnprocessableError
from router.core.policy import GATE_THRESHOLDS, POLICY_THRESHOLDS, validate_thresholds
from router.ledger.interface import LedgerStore, ReplayCell, ReplayCells

#: The thresholds a replay can change: the routing policy's (``route.large``, ``route.search``).
ROUTING: tuple[str, ...] = tuple(POLICY_THRESHOLDS)
CHEAPER = ("search", "small")

ASSUMPTIONS: tuple[str, ...] = (
    ("current = the logged figures: each request as it was routed, under the thresholds (and the policy objective) "
     "in force when it was made"),
    ("proposed first tier = the routing thresholds applied to the logged scores (large if P(large) >= route.large, "
     "else search if P(search) >= route.search, else small); a request the energy objective moved from the small to "
     "the large tier (flag objective:energy: the small model was expected to cost more) goes large again whenever "
     "the rule picks small; a request with a floor (flag floor:<tier>: it needed tools or a JSON format only that "
     "tier honours, or its conversation's previous answer needed that tier) never goes below it"),
    "requests whose first tier does not change keep their logged figures",
    ("a request moving up to the large tier costs its counterfactual energy (the configured large model answering "
     "it) and is no longer an avoided large call"),
    ("a request moving down (large to small or search, small to search) or from search to small costs the mean "
     "energy of the period's non-escalated requests first sent to that tier, plus that tier's observed escalation "
     "rate p times its counterfactual energy (an escalation is taken to end on the large tier); range: best case "
     "none escalates, worst case all do"),
    ("degraded requests (large tier needed but unavailable) keep their logged figures and stay degraded: the large "
     "tier was unavailable then; as in the report they are left out of avoided calls and net savings"),
    ("a request that moves to the large tier saves nothing and its estimate's uncertainty cancels: its avoided "
     "energy is exactly 0"),
    ("only answered (status < 400), classified, not forced requests are replayed; the others are counted in "
     "'excluded'"),
)

UNDER_ROUTING_REASON = (
    "the ledger holds no outcome labels (whether the large model was needed), so under-routing cannot be measured "
    "from logged traffic; 'moved_off_large' counts the requests the proposed thresholds would take off the large "
    "tier, the risk to weigh. Measure under-routing on labelled examples with `frugal calibrate --data FILE.jsonl`")


def _gate_refusal(names: Sequence[str]) -> str:
    routing = ", ".join(ROUTING)
    return (f"{', '.join(names)} cannot be replayed: only routing thresholds ({routing}) can be replayed from "
            "logged scores. The ledger logs the classifier's scores of every request, so the routing decision can "
            "be recomputed for each; a tier gate (*.min_confidence) judges an answer's confidence, which exists only "
            "for the tiers a request actually reached, so what a changed gate would have done cannot be known")


def proposed_thresholds(current: Mapping[str, float], changes: Mapping[str, object]) -> dict[str, float]:
    """The routing thresholds to replay: the current ones with ``changes``; a 422 for gates, unknown names, bad values."""
    if not changes:
        raise UnprocessableError(f"give at least one routing threshold to replay ({', '.join(ROUTING)}), "
                                 "e.g. route.large=0.3", param="thresholds")
    gates = sorted(name for name in changes if name in {spec.name for spec in GATE_THRESHOLDS})
    if gates:
        raise UnprocessableError(_gate_refusal(gates), param="thresholds")
    clean = validate_thresholds(changes, POLICY_THRESHOLDS)
    return {name: float(current[name]) for name in ROUTING} | clean


@dataclass(frozen=True)
class TierFigures:
    """What the period observed of the requests first sent to one tier: the basis of a moved request's cost."""

    requests: int
    escalation_rate: float
    mean_wh: tuple[float, float, float]  # value, min, max of a non-escalated request
    mean_cost_usd: float
    source: str

    def to_dict(self) -> dict[str, Any]:
        """The figures as JSON."""
        value, low, high = self.mean_wh
        return {"requests": self.requests, "escalation_rate": self.escalation_rate,
                "mean_energy_wh": {"value": value, "min": low, "max": high}, "mean_cost_usd": self.mean_cost_usd,
                "source": self.source}


def observed(cells: Sequence[ReplayCell]) -> dict[str, TierFigures]:
    """Per cheaper tier: requests first sent to it, their escalation rate, and the mean cost of one not escalated."""
    figures = {}
    for tier in CHEAPER:
        first = [c for c in cells if c.first_tier == tier]
        sent = sum(c.requests for c in first)
        escalated = sum(c.requests for c in first if c.escalated)
        answered = [c for c in first if not c.escalated and not c.degraded]
        n = sum(c.requests for c in answered)
        rate = escalated / sent if sent else 0.0
        if n:
            mean = tuple(sum(c.sums[k] for c in answered) / n for k in ("energy_wh", "energy_wh_min", "energy_wh_max"))
            cost = sum(c.sums["cost_usd"] for c in answered) / n
            source = f"ledger: mean of {n} non-escalated requests first sent to {tier} in the period"
        else:
            mean, cost = (DEFAULT_ENERGY_WH[tier],) * 3, 0.0
            source = f"default {DEFAULT_ENERGY_WH[tier]:g} Wh: no non-escalated request was first sent to {tier} in the period"
        if not sent:
            source += f"; no escalation rate observed for {tier}, 0 assumed (the range's worst case has all escalate)"
        figures[tier] = TierFigures(sent, rate, (mean[0], mean[1], mean[2]), cost, source)
    return figures


def _triple(sums: Mapping[str, float], name: str) -> tuple[float, float, float]:
    return sums[name], sums[f"{name}_min"], sums[f"{name}_max"]


def _ranged(values: Sequence[float]) -> dict[str, float]:
    return {"value": values[0], "min": values[1], "max": values[2]}


@dataclass
class Scenario:
    """The figures of one column of the comparison (current or proposed), summed cell by cell."""

    requests: int = 0
    first: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    final: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    energy: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    cf: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    avoided_wh: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    avoided_calls: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    degraded: int = 0
    escalated: float = 0.0
    unreturned_wh: float = 0.0
    cost_usd: float = 0.0
    cf_cost_usd: float = 0.0

    def _add(self, n: int, first: str, energy: Sequence[float], cf: Sequence[float], cost: float,
             cf_cost: float) -> None:
        self.requests += n
        self.first[first] += n
        for i in range(3):
            self.energy[i] += energy[i]
            self.cf[i] += cf[i]
        self.cost_usd += cost
        self.cf_cost_usd += cf_cost

    def _avoid(self, energy: Sequence[float], cf: Sequence[float]) -> None:
        """Net avoided Wh, bound by bound as the report does: min = cf.min - actual.max."""
        self.avoided_wh[0] += cf[0] - energy[0]
        self.avoided_wh[1] += cf[1] - energy[2]
        self.avoided_wh[2] += cf[2] - energy[1]

    def logged(self, cell: ReplayCell, first: str) -> None:
        """A cell as it was recorded (its first tier counted as ``first``)."""
        s, n = cell.sums, cell.requests
        energy, cf = _triple(s, "energy_wh"), _triple(s, "cf_energy_wh")
        self._add(n, first, energy, cf, s["cost_usd"], s["cf_cost_usd"])
        self.final[cell.route] += n
        self.escalated += n if cell.escalated else 0
        self.unreturned_wh += s["escalation_energy_wh"]
        if cell.degraded:
            self.degraded += n
            return
        self._avoid(energy, cf)
        if cell.route in CHEAPER:
            self.avoided_calls = [calls + n for calls in self.avoided_calls]

    def to_large(self, cell: ReplayCell) -> None:
        """A cell moved up: the large model answers it at its counterfactual cost; nothing is avoided."""
        s, n = cell.sums, cell.requests
        cf = _triple(s, "cf_energy_wh")
        self._add(n, "large", cf, cf, s["cf_cost_usd"], s["cf_cost_usd"])
        self.final["large"] += n

    def to_cheaper(self, cell: ReplayCell, tier: str, seen: TierFigures) -> None:
        """A cell moved to ``tier``: its observed mean cost, and a share p escalates at the counterfactual's cost."""
        s, n, p = cell.sums, cell.requests, seen.escalation_rate
        cf = _triple(s, "cf_energy_wh")
        mean = seen.mean_wh
        energy = (n * mean[0] + p * cf[0], n * mean[1], n * mean[2] + cf[2])
        self._add(n, tier, energy, cf, n * seen.mean_cost_usd + p * s["cf_cost_usd"], s["cf_cost_usd"])
        self.final[tier] += (1 - p) * n
        self.final["large"] += p * n
        self._avoid(energy, cf)
        self.avoided_calls[0] += (1 - p) * n
        self.avoided_calls[2] += n
        self.escalated += p * n
        self.unreturned_wh += p * n * mean[0]

    def _shares(self, counts: Mapping[str, float]) -> dict[str, float]:
        """Share of the replayed requests per tier (every tier, then any other route seen)."""
        names = [*TIERS, *sorted(name for name, n in counts.items() if n and name not in TIERS)]
        return {name: counts.get(name, 0.0) / (self.requests or 1) for name in names}

    def to_dict(self) -> dict[str, Any]:
        """The column as JSON: shares of the replayed requests, ranged energy, avoided calls and savings."""
        return {
            "requests": self.requests,
            "first_tier_shares": self._shares(self.first), "final_route_shares": self._shares(self.final),
            "energy_wh": _ranged(self.energy), "counterfactual_energy_wh": _ranged(self.cf),
            "net_avoided_energy_wh": _ranged(self.avoided_wh), "avoided_large_calls": _ranged(self.avoided_calls),
            "degraded": self.degraded, "escalated": self.escalated, "unreturned_energy_wh": self.unreturned_wh,
            "cost_usd": self.cost_usd, "counterfactual_cost_usd": self.cf_cost_usd,
        }


def predict(cells: ReplayCells, current: Mapping[str, float], proposed: Mapping[str, float]) -> dict[str, Any]:
    """Current (logged) against proposed figures of the replayed cells; a 422 when there is nothing to replay."""
    replayed = sum(c.requests for c in cells.cells)
    if not replayed:
        left_out = ", ".join(f"{n} {why.replace('_', ' ')}" for why, n in cells.excluded.items())
        raise UnprocessableError(
            "nothing to replay: the ledger holds no classified, not forced, answered requests in this period "
            f"(left out: {left_out})", param="since")
    seen = observed(cells.cells)
    now, then = Scenario(), Scenario()
    moved: dict[str, dict[str, int]] = {tier: dict.fromkeys(TIERS, 0) for tier in TIERS}
    for cell in cells.cells:
        now.logged(cell, cell.first_tier)
        moved.setdefault(cell.first_tier, dict.fromkeys(TIERS, 0))[cell.proposed] += cell.requests
        if cell.degraded or cell.first_tier == cell.proposed:
            then.logged(cell, cell.proposed)
        elif cell.proposed == "large":
            then.to_large(cell)
        else:
            then.to_cheaper(cell, cell.proposed, seen[cell.proposed])
    off_large = sum(n for tier, n in moved["large"].items() if tier != "large")
    return {
        "thresholds": {"current": {name: float(current[name]) for name in ROUTING},
                       "proposed": {name: float(proposed[name]) for name in ROUTING}},
        "replayed": replayed, "excluded": dict(cells.excluded),
        "current": now.to_dict(), "proposed": then.to_dict(),
        "moved": moved, "moved_requests": sum(n for a, row in moved.items() for b, n in row.items() if a != b),
        "under_routing": {"value": None, "reason": UNDER_ROUTING_REASON, "moved_off_large": off_large,
                          "moved_off_large_share": off_large / replayed},
        "observed": {tier: figures.to_dict() for tier, figures in seen.items()},
        "assumptions": list(ASSUMPTIONS),
    }


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def run_whatif(ledger: LedgerStore, current: Mapping[str, float], changes: Mapping[str, object], *,
               since: datetime | None = None, until: datetime | None = None) -> dict[str, Any]:
    """Replay the ledger's requests of ``[since, until)`` under ``current`` thresholds updated with ``changes``."""
    proposed = proposed_thresholds(current, changes)
    low, high = _utc(since), _utc(until)
    if low is not None and high is not None and low >= high:
        raise UnprocessableError(f"since ({low.isoformat()}) must be before until ({high.isoformat()})", param="since")
    cells = ledger.replay_cells(proposed["route.large"], proposed["route.search"], low, high)
    result = predict(cells, current, proposed)
    return {"period": {"since": low.isoformat() if low else None, "until": high.isoformat() if high else None},
            **result}
