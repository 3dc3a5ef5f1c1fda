"""What a request carries through the pipeline and what it cost: attempts, their estimates, the outcome.

``Accounting`` is the one place that turns a backend's answer into an estimated ``Attempt``, sums
estimates (``spent``), and builds the two client-visible views of a routed request: the ``x-frugal-*``
headers and the ``frugal`` object of the response body (DESIGN.md, "Contracts"). The recorder
(``router.recording``) writes the same figures to the ledger.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from router.core import Completion, CompletionRequest, Tier
from router.core.errors import FrugalError
from router.core.estimate import Estimate, Range

if TYPE_CHECKING:
    from router.energy.estimator import EnergyEstimator

log = logging.getLogger(__name__)


@dataclass
class RoutedRequest:
    """A validated chat request, ready for the pipeline."""

    request_id: str
    requested_model: str
    forced_tier: Tier | None
    completion_request: CompletionRequest
    client_key_id: str | None = None


def approx_tokens(text: str) -> int:
    """Tokens of ``text`` where no tokenizer counted them (a search answer, a prompt before routing): chars / 4."""
    return len(text) // 4 + 1


@dataclass(frozen=True)
class Decision:
    """Where a request goes first, why, what deciding cost, and the one threshold snapshot it is served under."""

    tier: Tier
    scores: dict[str, float] | None
    reason: str
    decision_ms: float
    estimate: Estimate
    thresholds: Mapping[str, float]
    cpu_energy_wh: float = 0.0  # the CPU-time cross-check of ``estimate``
    flags: tuple[str, ...] = ()  # what moved the tier off the thresholds' pick: ``objective:energy``, ``floor:<tier>``


@dataclass(frozen=True)
class StreamStarted:
    """Emitted once, just before answer text starts to flow: the headers a stream can carry."""

    route: Tier
    headers: dict[str, str]


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
    cpu_energy_wh: float | None = None  # local work: CPU time x watts, the cross-check of ``estimate``

    def to_dict(self) -> dict[str, object]:
        """The attempt as it appears in ``frugal.attempts``."""
        body: dict[str, object] = {
            "tier": self.tier,
            "sufficient": self.sufficient,
            "confidence": self.confidence,
            "latency_ms": round(self.latency_ms, 3),
            "energy_wh": self.estimate.energy_wh.value,
            "reason": self.reason,
        }
        if self.cpu_energy_wh is not None:
            body["cpu_energy_wh"] = self.cpu_energy_wh
        return body


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
    cpu_energy_wh: float = 0.0  # CPU time x watts of the local work: the cross-check column of the ledger
    decision_reason: str = ""
    degraded_budget: dict[str, float] | None = None  # the tokens and seconds a degraded answer was given
    needs: list[str] = field(default_factory=list)  # the capabilities the request needed (``router.core.capabilities``)
    ignored_params: list[str] = field(default_factory=list)  # fields the answering tier did not apply

    @property
    def escalations(self) -> int:
        """How many times the request moved up a tier."""
        return max(0, len(self.attempts) - 1)

    @property
    def avoided_wh(self) -> Range:
        """Energy the all-large counterfactual would have used beyond what this request used."""
        return self.counterfactual.energy_wh - self.estimate.energy_wh

    def usage(self) -> dict[str, Any]:
        """OpenAI ``usage`` of the answer that was returned (with the upstream's token details, unchanged)."""
        prompt, completion = self.completion.prompt_tokens, self.completion.completion_tokens
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                **self.completion.usage_details}

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
            "decision_reason": self.decision_reason,
        }
        if self.completion.evidence is not None:
            body["evidence"] = self.completion.evidence.to_dict()
        if self.degraded:
            body["degraded"] = self.degraded
        if self.degraded_budget:
            body["degraded_budget"] = dict(self.degraded_budget)
        if self.flags:
            body["flags"] = list(self.flags)
        if self.needs:
            body["needs"] = list(self.needs)
        if self.ignored_params:
            body["ignored_params"] = list(self.ignored_params)
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


def spent(decision: Decision | None, attempts: Iterable[Attempt]) -> Estimate:
    """Everything a request used so far: its decision and every attempt (the one place estimates are summed)."""
    total = decision.estimate if decision is not None else Estimate.zero()
    for attempt in attempts:
        total = total + attempt.estimate
    return total


class Accounting:
    """Estimates each attempt and renders a request's figures for the client."""

    def __init__(self, estimator: EnergyEstimator) -> None:
        self.estimator = estimator

    def deciding(self, cpu_seconds: float, classifier: str = "classifier") -> tuple[Estimate, float]:
        """What classifying a request cost: (estimate, CPU-time cross-check Wh); ``classifier`` names its variant."""
        return self.estimator.work(f"classifier:{classifier}", cpu_seconds=cpu_seconds)

    def expected_wh(self, request: CompletionRequest, local: Mapping[str, str], *, large: bool) -> dict[str, float]:
        """Each tier's expected Wh for ``request`` before routing: ``local`` maps local tiers to their model names.

        Prompt tokens are taken as characters / 4; output tokens as the tier's running median, capped by
        ``max_tokens``. A local tier whose work was never measured, and an unavailable large tier, are left out.
        """
        prompt_tokens = approx_tokens("".join(m.content for m in request.messages))
        expected: dict[str, float] = {}
        for tier, model in local.items():
            wh = self.estimator.expected_local(model, prompt_tokens=prompt_tokens,
                                               output_tokens=self.estimator.expected_output_tokens(tier, request.max_tokens))
            if wh is not None:
                expected[tier] = wh.value
        if large:
            expected["large"] = self.estimator.expected_remote(
                self.estimator.config.counterfactual, prompt_tokens=prompt_tokens,
                output_tokens=self.estimator.expected_output_tokens("large", request.max_tokens)).value
        return expected

    def attempt(self, tier: Tier, backend: str, completion: Completion, elapsed: float) -> Attempt:
        """An answered try, estimated from its measured work (local tiers) or its tokens (remote models)."""
        cpu_energy_wh: float | None = None
        if completion.cpu_seconds is not None:
            estimate, cpu_energy_wh = self.estimator.work(
                completion.model, cpu_seconds=completion.cpu_seconds, prompt_tokens=completion.prompt_tokens,
                output_tokens=completion.completion_tokens,
            )
            if tier == "small":
                self.estimator.observe_small_output(completion.completion_tokens)
        else:
            estimate = self.estimator.remote(
                completion.model, prompt_tokens=completion.prompt_tokens,
                completion_tokens=completion.completion_tokens, latency_s=elapsed,
            )
        if completion.flags:
            estimate = dataclasses.replace(estimate, flags=tuple(dict.fromkeys((*estimate.flags, *completion.flags))))
        if tier == "large":
            self.estimator.observe_large_output(completion.completion_tokens)
        return Attempt(
            tier=tier, backend=backend, sufficient=completion.sufficient, confidence=completion.confidence,
            latency_ms=elapsed * 1000, estimate=estimate, completion=completion, reason=completion.reason,
            cpu_energy_wh=cpu_energy_wh,
        )

    @staticmethod
    def failed(tier: Tier, backend: str, exc: FrugalError, elapsed: float) -> Attempt:
        """A failed try: its wall time is kept; its energy is not measured (the backend reported none)."""
        log.info("the %s tier failed (%s); escalating", tier, exc.code)
        return Attempt(tier, backend, False, None, elapsed * 1000, Estimate.zero(), reason=f"error: {exc.code}",
                       error=exc.code)

    @staticmethod
    def skipped(tier: Tier, reason: str) -> Attempt:
        """A tier passed over without a call (unavailable, warming)."""
        return Attempt(tier, "-", False, None, 0.0, Estimate.zero(), reason=reason)

    def stream_started(
        self, routed: RoutedRequest, decision: Decision, attempts: list[Attempt], route: Tier,
        degraded: str | None, *, partial: bool = True, escalations: int | None = None,
    ) -> StreamStarted:
        """Headers for a stream that starts now; ``attempts`` are the earlier ones unless ``escalations`` says."""
        used = spent(decision, attempts)
        counterfactual = self.estimator.counterfactual(0, max_tokens=routed.completion_request.max_tokens)
        headers = frugal_headers(
            request_id=routed.request_id, route=route,
            escalations=len(attempts) if escalations is None else escalations, energy_wh=used.energy_wh.value,
            co2e_g=used.co2e_g.value, avoided_wh=(counterfactual.energy_wh - used.energy_wh).value,
            degraded=degraded, partial=partial,
        )
        return StreamStarted(route=route, headers=headers)

    def outcome(
        self, routed: RoutedRequest, decision: Decision, attempts: list[Attempt], final: Attempt,
        degraded: str | None, created: int, *, budget: dict[str, float] | None = None,
    ) -> Outcome:
        """The answered request with its totals and the all-large counterfactual it is compared with.

        ``budget`` is the degraded budget the final answer was generated under, when one was applied.
        """
        assert final.completion is not None
        total = spent(decision, attempts)
        answered = [a.completion for a in attempts if a.completion is not None]
        large = [a for a in attempts if a.tier == "large" and a.completion is not None]
        prompt_tokens = max((c.prompt_tokens for c in answered), default=0)
        counterfactual = large[-1].estimate if large else self.estimator.counterfactual(
            prompt_tokens, max_tokens=routed.completion_request.max_tokens,
            answer_tokens=final.completion.completion_tokens or approx_tokens(final.completion.text))  # search: 0
        return Outcome(
            request_id=routed.request_id, created=created, requested_model=routed.requested_model,
            route=final.tier, forced=routed.forced_tier is not None, scores=decision.scores, attempts=attempts,
            completion=final.completion, estimate=total, counterfactual=counterfactual,
            decision_ms=decision.decision_ms, degraded=degraded,
            flags=[*total.flags, *decision.flags],
            cpu_energy_wh=decision.cpu_energy_wh + sum(a.cpu_energy_wh or 0.0 for a in attempts),
            decision_reason=decision.reason, degraded_budget=budget,
        )
