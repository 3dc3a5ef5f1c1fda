"""The routing: classify → decide → try the tier → escalate or degrade; what each step costs is accounted.

One ``Dispatcher`` reads one threshold snapshot per request, asks the classifier and the policy where to
start, and walks the tiers (``router.tier_runner``, one per tier) until an answer is sufficient or no
tier is left. ``router.accounting`` estimates and renders, ``router.recording`` writes the ledger row.
It yields events so that streaming and non-streaming requests share one code path: a tier that may
still escalate answers in full first (its gate needs the whole answer); the last tier a request can
reach streams live. A request goes only to tiers that honour what it needs (tools, a JSON format …,
``router.core.capabilities``), and a new turn of a conversation never below the tier its previous answer
needed (``router.stickiness``); both show in the decision's reason and flags (``floor:<tier>``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Protocol

from router.accounting import Accounting, Attempt, Decision, Outcome, RoutedRequest, StreamStarted
from router.capability_routing import CapabilityRouting
from router.core import (
    NEXT_TIER,
    RANK,
    TIERS,
    Completion,
    CompletionRequest,
    Message,
    Passage,
    TextDelta,
    Tier,
)
from router.core.capabilities import ordered
from router.core.errors import (
    BackendTimeoutError,
    CapableTierUnavailableError,
    FrugalError,
    RateLimitError,
    TierSaturatedError,
    TierUnavailableError,
    TierWarmingError,
)
from router.core.estimate import Estimate
from router.core.policy import Decision as PolicyDecision
from router.core.policy import Scored, policy_values
from router.core.types import delta_fields
from router.limits import DegradedBudget
from router.recording import RequestRecorder
from router.stickiness import AnswerMemory, prior_turn

if TYPE_CHECKING:
    from router.thresholds import ThresholdStore
    from router.tier_runner import TierRunner

log = logging.getLogger(__name__)

DISABLED = "disabled in configuration"  # why a tier with ``enabled: false`` has no runner
LARGE_CONFIGURE_HELP = (
    "configure it with FRUGAL_LARGE__MODEL (a litellm model string such as openai/gpt-4o-mini) and, for a "
    "self-hosted server, FRUGAL_LARGE__API_BASE"
)


class Classifier(Protocol):
    """What the dispatcher needs from the tier classifier."""

    def predict(self, messages: list[Message]) -> Scored: ...


class Deciding(Protocol):
    """A routing policy built for one threshold snapshot (``router.core.policy.Policy``)."""

    def decide(self, prediction: Scored, expected_wh: Mapping[str, float] | None = None) -> PolicyDecision:
        """The first tier for a prediction, given each available tier's expected Wh."""


class PolicyFactory(Protocol):
    """Builds a policy from the current thresholds."""

    def __call__(self, thresholds: Mapping[str, float]) -> Deciding: ...


class Dispatcher:
    """Routes one request through the tiers; ``accounting`` estimates it and ``recorder`` records it."""

    def __init__(
        self,
        *,
        classifier: Classifier | None,
        policy_factory: PolicyFactory,
        thresholds: ThresholdStore,
        tiers: Mapping[str, TierRunner],
        accounting: Accounting,
        recorder: RequestRecorder,
        max_escalations: int = 2,
        on_large_unavailable: str = "degrade",
        overflow: str = "escalate",
        search_escalates_to: Tier = "large",
        degraded_budget: DegradedBudget | None = None,
        unbuilt: Mapping[str, str] | None = None,
        memory: AnswerMemory | None = None,
    ) -> None:
        self.classifier = classifier
        self.policy_factory = policy_factory
        self.thresholds = thresholds
        self.tiers = dict(tiers)
        self.accounting = accounting
        self.recorder = recorder
        self.max_escalations = max_escalations
        self.on_large_unavailable = on_large_unavailable
        self.overflow = overflow
        self.next_tier: dict[Tier, Tier | None] = {**NEXT_TIER, "search": search_escalates_to}
        self.degraded_budget = degraded_budget
        self.unbuilt = dict(unbuilt or {})  # tier -> why it has no runner (disabled, failed to build)
        self.memory = memory  # None: conversations are not sticky (``policy.sticky_conversations: false``)
        self.capability = CapabilityRouting(self.tiers, self.next_tier)
        self._policy_for: Mapping[str, float] | None = None
        self._policy_cache: Deciding | None = None

    async def answer(self, routed: RoutedRequest) -> Outcome:
        """Run the pipeline to completion (non-streaming)."""
        outcome: Outcome | None = None
        async for event in self.events(routed, live=False):  # to its end: a generator left open is closed by
            if isinstance(event, Outcome):                    # asyncio's finalizer, a task and a loop wake-up
                outcome = event
        if outcome is None:  # pragma: no cover - defensive
            raise FrugalError("pipeline ended without an outcome")
        return outcome

    async def events(
        self, routed: RoutedRequest, *, live: bool
    ) -> AsyncIterator[StreamStarted | TextDelta | Outcome]:
        """Yield ``StreamStarted``, text deltas and finally the ``Outcome``; failures are recorded, then raised."""
        started = time.perf_counter()
        created = int(time.time())
        attempts: list[Attempt] = []
        decision: Decision | None = None
        answered = False
        try:
            decision = await self._decide(routed, self.thresholds.values())  # the request's one snapshot
            async for event in self._attempt_chain(routed, decision, attempts, live=live, created=created,
                                                   started=started):
                answered = answered or isinstance(event, Outcome)  # recorded by the chain before it is yielded
                yield event
        except FrugalError as exc:
            await self.recorder.failed(routed, decision, attempts, exc, started)
            raise
        except Exception as exc:  # a bug: the client gets a 500, and the work done still gets its ledger row
            if not answered:
                await self.recorder.failed(routed, decision, attempts,
                                           FrugalError(f"internal error: {exc!r}", code="internal_error"), started)
            raise
        except (asyncio.CancelledError, GeneratorExit):
            if not answered:  # the client went away mid-stream: the work done so far is still recorded
                self.recorder.abandoned(routed, decision, attempts, started)
            raise

    async def _decide(self, routed: RoutedRequest, thresholds: Mapping[str, float]) -> Decision:
        needs = routed.completion_request.needs
        if routed.forced_tier is not None:
            self.capability.check_forced(routed.forced_tier, needs)
            return Decision(routed.forced_tier, None, "forced by model name", 0.0, Estimate.zero(), thresholds)
        capable = self.capability.capable(needs)  # a 400 before any work when no configured tier can honour it
        only = self.capability.only_choice(needs, capable, routed.completion_request.last_user_text())
        if only is not None:
            return Decision(only[0], None, only[1], 0.0, Estimate.zero(), thresholds, 0.0, (f"floor:{only[0]}",))
        if self.classifier is None:
            raise TierUnavailableError("the classifier is not loaded; use a forced model (frugal-small …)")
        messages = routed.completion_request.messages
        wall = time.perf_counter()
        prediction, cpu_seconds = await asyncio.to_thread(self._classify, messages)
        floor = self.memory.floor(messages) if self.memory is not None else None
        if floor is None and self.memory is not None and getattr(prediction, "follow_up", False):
            floor, seconds = await asyncio.to_thread(self._earlier_question_floor, messages, thresholds)
            cpu_seconds += seconds
        decision_ms = (time.perf_counter() - wall) * 1000
        decided = self._policy(thresholds).decide(prediction, await self._expected_wh(routed.completion_request))
        tier, reason = decided.tier, decided.reason
        flags = [decided.flag] if decided.flag else []
        if floor is not None and RANK[floor[0]] > RANK[tier]:
            tier, reason = floor[0], f"{reason}; {floor[1]}: not below the {floor[0]} tier"
            flags.append(f"floor:{tier}")
        tier, reason, moved = self.capability.start(tier, needs, reason)
        if moved:
            flags.append(f"floor:{tier}")
        scores: dict[str, float] = {name: float(prediction.scores[name]) for name in TIERS}
        estimate, cpu_energy_wh = self.accounting.deciding(cpu_seconds, getattr(self.classifier, "variant", "?"))
        return Decision(tier, scores, reason, decision_ms, estimate, thresholds, cpu_energy_wh, tuple(flags))

    def _earlier_question_floor(self, messages: list[Message],
                                thresholds: Mapping[str, float]) -> tuple[tuple[Tier, str] | None, float]:
        """For a follow-up to an answer not remembered: the tier its earlier question gets on its own (and CPU s)."""
        prior = prior_turn(messages)
        if prior is None or not prior.question.strip():
            return None, 0.0
        prediction, seconds = self._classify([Message(role="user", content=prior.question)])
        tier = self._policy(thresholds).decide(prediction).tier
        return (tier, f"a follow-up whose earlier question goes to the {tier} tier"), seconds

    async def _expected_wh(self, request: CompletionRequest) -> dict[str, float]:
        """Expected Wh of each tier that could answer now (for the policy's objective)."""
        local: dict[str, str] = {tier: name for tier in ("search", "small")
                 if tier in self.tiers and (name := self.tiers[tier].backend.work_name())}
        return self.accounting.expected_wh(request, local, large=await self._state("large") == "ready")

    def _policy(self, thresholds: Mapping[str, float]) -> Deciding:
        """The policy for this snapshot, rebuilt only when the thresholds change."""
        if self._policy_cache is None or self._policy_for is not thresholds:
            self._policy_cache = self.policy_factory(policy_values(thresholds))
            self._policy_for = thresholds
        return self._policy_cache

    def _classify(self, messages: list[Message]) -> tuple[Scored, float]:
        assert self.classifier is not None
        start = time.thread_time()
        prediction = self.classifier.predict(messages)
        return prediction, time.thread_time() - start

    async def _state(self, tier: Tier) -> str:
        """``ready``, ``warming`` or ``unavailable``, from the tier's known health."""
        runner = self.tiers.get(tier)
        if runner is None:
            return "unavailable"
        health = await runner.health()
        return "ready" if health.ready else ("warming" if health.warming else "unavailable")

    async def _attempt_chain(
        self, routed: RoutedRequest, decision: Decision, attempts: list[Attempt], *, live: bool, created: int,
        started: float,
    ) -> AsyncIterator[StreamStarted | TextDelta | Outcome]:
        forced = routed.forced_tier is not None
        tier: Tier | None = decision.tier
        context = list(routed.completion_request.context)
        degraded: str | None = None
        final: Attempt | None = None
        streamed = False
        budget: DegradedBudget | None = None
        while tier is not None:
            state = await self._state(tier)
            if state != "ready":
                tier, final, degraded = self._skip_unavailable(tier, forced, attempts, degraded, reason=state,
                                                               needs=routed.completion_request.needs)
                continue
            runner = self.tiers[tier]
            next_tier = None if degraded else self.capability.next_capable(tier, routed.completion_request.needs)
            can_escalate = not forced and next_tier is not None and len(attempts) < self.max_escalations
            request = self._request_for(routed, decision, tier, context)
            budget = self.degraded_budget if degraded else None
            if budget is not None:
                request = budget.applied(request)
            timeout_s = budget.timeout_s if budget is not None else None
            stream: AsyncIterator[TextDelta | Completion] | None = None
            first: TextDelta | Completion | None = None
            completion: Completion | None = None
            wall = time.perf_counter()
            try:
                if live and not can_escalate:
                    stream = runner.stream(request, timeout_s)
                    first = await anext(stream, None)  # failures before any text may still escalate or degrade
                else:
                    completion, elapsed = await runner.complete(request, timeout_s)
            except FrugalError as exc:
                if can_escalate and not (isinstance(exc, TierSaturatedError) and self.overflow == "reject"):
                    attempts.append(self.accounting.failed(tier, runner.name, exc, time.perf_counter() - wall))
                    tier = next_tier
                    continue
                if not self._degrades(exc, tier, forced):
                    raise
                unavailable = isinstance(exc, TierUnavailableError)
                if unavailable:
                    runner.mark_unavailable(f"the last request failed: {exc.message}")
                tier, final, degraded = self._skip_unavailable(
                    tier, forced, attempts, degraded, reason="unavailable" if unavailable else f"error: {exc.code}",
                    needs=routed.completion_request.needs)
                if final is not None:
                    break
                continue
            if stream is not None:
                yield self.accounting.stream_started(routed, decision, attempts, tier, degraded)
                streamed = True
                completion = first if isinstance(first, Completion) else None
                if isinstance(first, TextDelta):
                    yield first
                async for event in stream:
                    if isinstance(event, TextDelta):
                        yield event
                    else:
                        completion = event
                elapsed = time.perf_counter() - wall
            if completion is None:
                raise FrugalError(f"the {tier} tier ended its stream without a final answer")
            attempt = self.accounting.attempt(tier, runner.name, completion, elapsed)
            attempts.append(attempt)
            if completion.sufficient or not can_escalate:
                final = attempt
                break
            context = completion.passages or context
            tier = next_tier
        if final is None or final.completion is None:
            raise TierUnavailableError("no tier could answer this request")
        if live and not streamed:
            yield self.accounting.stream_started(routed, decision, attempts, final.tier, degraded, partial=False,
                                                 escalations=max(0, len(attempts) - 1))
            if final.completion.text or final.completion.message_fields:
                yield TextDelta(final.completion.text, delta_fields(final.completion.message_fields),
                                final.completion.logprobs)
        outcome = self.accounting.outcome(routed, decision, attempts, final, degraded, created,
                                          budget=budget.to_dict() if budget is not None and final is attempts[-1]
                                          else None)
        outcome.needs = ordered(routed.completion_request.needs)
        outcome.ignored_params = self.capability.ignored_params(final.tier, routed.completion_request.params)
        if self.memory is not None:
            self.memory.remember(final.completion.text, "large" if degraded else final.tier)
        await self.recorder.answered(routed, outcome, latency_ms=(time.perf_counter() - started) * 1000)
        yield outcome

    def _degrades(self, exc: FrugalError, tier: Tier, forced: bool) -> bool:
        """Whether a large-tier failure of an automatic request takes the degrade path.

        Unreachable (503) always does (the path itself answers 503 when ``on_large_unavailable`` is
        ``error``); a timeout or the provider's 429 does only in ``degrade`` mode, where the best cheaper
        answer beats an error. A broken provider or configuration (502) and Frugal's own saturated-tier
        429 are answered as they are, so that they are seen.
        """
        if tier != "large" or forced:
            return False
        if isinstance(exc, TierUnavailableError):
            return True
        transient = isinstance(exc, (BackendTimeoutError, RateLimitError)) and not isinstance(exc, TierSaturatedError)
        return transient and self.on_large_unavailable == "degrade"

    def _skip_unavailable(
        self, tier: Tier, forced: bool, attempts: list[Attempt], degraded: str | None, reason: str = "unavailable",
        needs: frozenset[str] = frozenset(),
    ) -> tuple[Tier | None, Attempt | None, str | None]:
        """Decide where an unavailable tier sends the request: (next tier, final attempt, degraded)."""
        if forced and reason == "warming":
            raise TierWarmingError(f"the {tier} tier is still loading (GET /healthz says 'warming'); "
                                   "retry in a few seconds", param="model")
        if forced:
            raise TierUnavailableError(self._unavailable(tier), param="model")
        attempts.append(self.accounting.skipped(tier, reason))
        if tier != "large":
            following = self.capability.next_capable(tier, needs)
            if following is None:
                raise CapableTierUnavailableError(self._capable_down(tier, needs))
            return following, None, degraded
        if needs and not self.capability.honours("small", needs):
            raise CapableTierUnavailableError(self._capable_down("large", needs))
        if self.on_large_unavailable != "degrade" or degraded:
            raise TierUnavailableError(self._unavailable("large") + "; or set on_large_unavailable: degrade to "
                                       "answer with the small tier")
        if not any(a.tier == "small" for a in attempts):
            return "small", None, "large-unavailable"  # search_escalates_to: large still degrades to small
        answered = [a for a in attempts if a.completion is not None]
        if answered:
            return None, answered[-1], "large-unavailable"
        if any(a.reason == "warming" for a in attempts):
            raise TierWarmingError("the small tier is still loading its model (GET /healthz says 'warming') and "
                                   "the large tier is not available; retry in a few seconds")
        raise TierUnavailableError("neither the small nor the large tier is available; " + self._unavailable("large"))

    def _capable_down(self, tier: Tier, needs: frozenset[str]) -> str:
        """Why a request whose needs only unavailable tiers honour cannot be answered now."""
        return f"the request needs {', '.join(ordered(needs))}, which no tier that is up can honour; " + \
            self._unavailable(tier)

    def _unavailable(self, tier: Tier) -> str:
        """Why ``tier`` cannot answer: not configured (and how to configure it), or configured but down (and why)."""
        help_ = f"; {LARGE_CONFIGURE_HELP}" if tier == "large" else ""
        runner = self.tiers.get(tier)
        if runner is None:
            reason = self.unbuilt.get(tier, "no backend was built for it")
            if reason == DISABLED:
                help_ = f"; enable it with {tier}.enabled: true (FRUGAL_{tier.upper()}__ENABLED=true){help_}"
            return f"the {tier} tier is not available ({reason}){help_}"
        health = runner.last_health
        if not health.configured:
            return health.detail or f"the {tier} tier is not configured{help_}"
        return (f"the {tier} tier ({runner.name}) is configured but not available now: "
                f"{health.detail or 'its health check failed'}; GET /healthz shows its state")

    @staticmethod
    def _request_for(routed: RoutedRequest, decision: Decision, tier: Tier, context: list[Passage]) -> CompletionRequest:
        """The tier's request, its gate threshold taken from the request's snapshot (never re-read)."""
        return dataclasses.replace(
            routed.completion_request, context=context, min_confidence=decision.thresholds.get(f"{tier}.min_confidence")
        )
