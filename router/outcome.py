"""What the dispatcher produces for one request: attempts, the final answer and its accounting.

``Outcome`` renders the two client-visible views of a routed request: the ``x-frugal-*`` headers and
the ``frugal`` object of the response body (DESIGN.md, "Contracts").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from router.core import Completion, Tier
from router.core.estimate import Estimate, Range


@dataclass
class Attempt:
    """One tier's try at answering: timed, judged and estimated."""

    tier: Tier
    backend: str
    sufficient: bool
    confidence: float | None
    latency_ms: float
    estimate: Estimate
    completion: Completion | None = None
    reason: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        """The attempt as it appears in ``frugal.attempts``."""
        return {
            "tier": self.tier,
            "sufficient": self.sufficient,
            "confidence": self.confidence,
            "latency_ms": round(self.latency_ms, 3),
            "energy_wh": self.estimate.energy_wh.value,
            "reason": self.reason,
        }


@dataclass
class Outcome:
    """The routed, answered and accounted request."""

    request_id: str
    created: int
    requested_model: str
    route: Tier
    forced: bool
    scores: dict[str, float] | None
    attempts: list[Attempt]
    completion: Completion
    estimate: Estimate
    counterfactual: Estimate
    decision_ms: float
    degraded: str | None = None
    flags: list[str] = field(default_factory=list)

    @property
    def escalations(self) -> int:
        """How many times the request moved up a tier."""
        return max(0, len(self.attempts) - 1)

    @property
    def avoided_wh(self) -> Range:
        """Energy the all-large counterfactual would have used beyond what this request used."""
        return self.counterfactual.energy_wh - self.estimate.energy_wh

    def usage(self) -> dict[str, int]:
        """OpenAI ``usage`` of the answer that was returned."""
        prompt, completion = self.completion.prompt_tokens, self.completion.completion_tokens
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def frugal_object(self) -> dict[str, object]:
        """The ``frugal`` object of the response body."""
        body: dict[str, object] = {
            "request_id": self.request_id,
            "route": self.route,
            "forced": self.forced,
            "scores": self.scores,
            "attempts": [attempt.to_dict() for attempt in self.attempts],
            "energy_wh": self.estimate.energy_wh.to_dict(),
            "co2e_g": self.estimate.co2e_g.value,
            "cost_usd": self.estimate.cost_usd,
            "avoided_wh": self.avoided_wh.to_dict(),
            "sources": [source.to_dict() for source in self.completion.sources],
            "decision_ms": round(self.decision_ms, 3),
        }
        if self.degraded:
            body["degraded"] = self.degraded
        if self.flags:
            body["flags"] = list(self.flags)
        return body

    def headers(self) -> dict[str, str]:
        """The ``x-frugal-*`` response headers."""
        return frugal_headers(
            request_id=self.request_id, route=self.route, escalations=self.escalations,
            energy_wh=self.estimate.energy_wh.value, co2e_g=self.estimate.co2e_g.value,
            avoided_wh=self.avoided_wh.value, degraded=self.degraded,
        )


def frugal_headers(
    *, request_id: str, route: str, escalations: int, energy_wh: float, co2e_g: float, avoided_wh: float,
    degraded: str | None = None, partial: bool = False,
) -> dict[str, str]:
    """Build the ``x-frugal-*`` headers; ``partial`` marks energy known only up to the stream's start."""
    headers = {
        "x-frugal-request-id": request_id,
        "x-frugal-route": route,
        "x-frugal-escalations": str(escalations),
        "x-frugal-energy-wh": f"{energy_wh:.6g}",
        "x-frugal-co2e-g": f"{co2e_g:.6g}",
        "x-frugal-avoided-wh": f"{avoided_wh:.6g}",
    }
    if degraded:
        headers["x-frugal-degraded"] = degraded
    if partial:
        headers["x-frugal-energy-partial"] = "true"
    return headers
