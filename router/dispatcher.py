"""The request pipeline: classify → decide → answer → escalate → estimate → record.

One ``Dispatcher`` composes the classifier, the policy, the tier backends, the energy estimator, the
ledger and the metrics. It yields events so that streaming and non-streaming requests share one code
path: a tier that may still escalate answers in full first (its gate needs the whole answer); the
last tier a request can reach streams live.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from router.core import NEXT_TIER, TIERS, Backend, Completion, CompletionRequest, Message, TextDelta, Tier
from router.core.errors import (
    BackendTimeoutError,
    FrugalError,
    RateLimitError,
    TierSaturatedError,
    TierUnavailableError,
    TierWarmingError,
)
from router.core.estimate import Estimate
from router.core.policy import policy_values
from router.outcome import Attempt, Outcome, frugal_headers
from router.recording import RequestRecorder
from router.thresholds import ThresholdStore

log = logging.getLogger(__name__)

HEALTH_TTL_S = 2.0

LARGE_UNAVAILABLE_HELP = (
    "the large tier is not available; configure it with FRUGAL_LARGE__MODEL (a litellm model string such as "
    "openai/gpt-4o-mini) and, for a self-hosted server, FRUGAL_LARGE__API_BASE, or set on_large_unavailable: degrade"
)


class Classifier(Protocol):
    """What the dispatcher needs from the tier classifier."""

    def predict(self, messages: list[Message]) -> Any: ...


class PolicyFactory(Protocol):
    """Builds a policy from the current thresholds."""

    def __call__(self, thresholds: Mapping[str, float]) -> Any: ...


@dataclass
class RoutedRequest:
    """A validated chat request, ready for the pipeline."""

    request_id: str
    requested_model: str
    forced_tier: Tier | None
    completion_request: CompletionRequest
    client_key_id: str | None = None


@dataclass(frozen=True)
class StreamStarted:
    """Emitted once, just before answer text starts to flow: the headers a stream can carry."""

    route: Tier
    headers: dict[str, str]


@dataclass
class _Decision:
    tier: Tier
    scores: dict[str, float] | None
    reason: str
    decision_ms: float
    estimate: Estimate


@contextlib.contextmanager
def backend_errors(tier: Tier, timeout_s: float | None, *, late: str) -> Iterator[None]:
    """Translate what a backend call raises: a timeout to a 504, any non-Frugal exception to ``backend_error``.

    The latter is an unexpected exception inside a backend; the pipeline records it and may escalate past it.
    """
    try:
        yield
    except TimeoutError as exc:
        raise BackendTimeoutError(f"the {tier} tier did not {late} within {timeout_s} s") from exc
    except FrugalError:
        raise
    except Exception as exc:
        log.error("the %s tier raised %s", tier, type(exc).__name__, exc_info=exc)
        raise FrugalError(f"the {tier} tier failed unexpectedly ({type(exc).__name__}); see the server log",
                          code="backend_error") from exc


class Dispatcher:
    """Routes one request through the tiers; its ``recorder`` accounts for it."""

    def __init__(
        self,
        *,
        classifier: Classifier | None,
        policy_factory: PolicyFactory,
        thresholds: ThresholdStore,
        backends: Mapping[str, Backend],
        timeouts: Mapping[str, float],
        estimator: Any,
        ledger: Any,
        metrics: Any,
        max_escalations: int = 2,
        on_large_unavailable: str = "degrade",
        store_text: bool = False,
        limiters: Mapping[str, Any] | None = None,
        overflow: str = "escalate",
        search_escalates_to: Tier = "large",
    ) -> None:
        self.classifier = classifier
        self.policy_factory = policy_factory
        self.thresholds = thresholds
        self.backends = dict(backends)
        self.timeouts = dict(timeouts)
        self.estimator = estimator
        self.metrics = metrics
        self.recorder = RequestRecorder(ledger, metrics, store_text=store_text)
        self.max_escalations = max_escalations
        self.on_large_unavailable = on_large_unavailable
        self.limiters = dict(limiters or {})
        self.overflow = overflow
        self.next_tier: dict[Tier, Tier | None] = {**NEXT_TIER, "search": search_escalates_to}
        self._health: dict[str, tuple[float, bool]] = {}
        self._warming: set[str] = set()  # tiers whose last probe said they were still loading

    async def answer(self, routed: RoutedRequest) -> Outcome:
        """Run the pipeline to completion (non-streaming)."""
        async for event in self.events(routed, live=False):
            if isinstance(event, Outcome):
                return event
        raise FrugalError("pipeline ended without an outcome")  # pragma: no cover - defensive

    async def events(
        self, routed: RoutedRequest, *, live: bool
    ) -> AsyncIterator[StreamStarted | TextDelta | Outcome]:
        """Yield ``StreamStarted``, text deltas and finally the ``Outcome``; failures are recorded, then raised."""
        started = time.perf_counter()
        created = int(time.time())
        attempts: list[Attempt] = []
        decision: _Decision | None = None
        answered = False
        try:
            decision = await self._decide(routed)
            async for event in self._attempt_chain(routed, decision, attempts, live=live, created=created,
                                                   started=started):
                answered = answered or isinstance(event, Outcome)  # recorded by the chain before it is yielded
                yield event
        except FrugalError as exc:
            await self.recorder.failed(routed, decision, attempts, exc, started)
            raise
        except (asyncio.CancelledError, GeneratorExit):
            if not answered:  # the client went away mid-stream: the work done so far is still recorded
                self.recorder.abandoned(routed, decision, attempts, started)
            raise

    async def _decide(self, routed: RoutedRequest) -> _Decision:
        if routed.forced_tier is not None:
            return _Decision(routed.forced_tier, None, "forced by model name", 0.0, Estimate.zero())
        if self.classifier is None:
            raise TierUnavailableError("the classifier is not loaded; use a forced model (frugal-small …)")
        wall = time.perf_counter()
        prediction, cpu_seconds = await asyncio.to_thread(self._classify, routed.completion_request.messages)
        decision_ms = (time.perf_counter() - wall) * 1000
        decided = self._policy().decide(prediction)
        scores: dict[str, float] = {tier: float(prediction.scores[tier]) for tier in TIERS}
        return _Decision(decided.tier, scores, decided.reason, decision_ms, self.estimator.local(cpu_seconds))

    def _policy(self) -> Any:
        """The policy for the current thresholds, rebuilt only when they change."""
        values = self.thresholds.values()
        if self._policy_for is not values:
            self._policy_cache = self.policy_factory(policy_values(values))
            self._policy_for = values
        return self._policy_cache

    _policy_for: Mapping[str, float] | None = None
    _policy_cache: Any = None

    def _classify(self, messages: list[Message]) -> tuple[Any, float]:
        assert self.classifier is not None
        start = time.thread_time()
        prediction = self.classifier.predict(messages)
        return prediction, time.thread_time() - start

    async def _available(self, tier: Tier) -> bool:
        """Whether the tier can answer, from a health probe cached for ``HEALTH_TTL_S`` seconds."""
        backend = self.backends.get(tier)
        if backend is None:
            return False
        now = time.monotonic()
        cached = self._health.get(tier)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            health = await backend.health()
            ready, warming = health.ready, health.warming
        except Exception:  # a health probe must never fail a request
            log.warning("health check of the %s tier failed", tier, exc_info=True)
            ready, warming = False, False
        self._health[tier] = (now + HEALTH_TTL_S, ready)
        (self._warming.add if warming else self._warming.discard)(tier)
        return ready

    def _mark_unavailable(self, tier: Tier) -> None:
        """Remember that a tier just failed to connect, so the next requests skip it for a while."""
        self._health[tier] = (time.monotonic() + HEALTH_TTL_S, False)

    def forget_health(self) -> None:
        """Drop the cached health probes (after the start-up warm-up, so loaded tiers serve at once)."""
        self._health.clear()
        self._warming.clear()

    async def _attempt_chain(
        self, routed: RoutedRequest, decision: _Decision, attempts: list[Attempt], *, live: bool, created: int,
        started: float,
    ) -> AsyncIterator[StreamStarted | TextDelta | Outcome]:
        forced = routed.forced_tier is not None
        tier: Tier | None = decision.tier
        context = list(routed.completion_request.context)
        degraded: str | None = None
        final: Attempt | None = None
        streamed = False
        while tier is not None:
            if not await self._available(tier):
                reason = "warming" if tier in self._warming else "unavailable"
                tier, final, degraded = self._skip_unavailable(tier, forced, attempts, degraded, reason=reason)
                continue
            next_tier = None if degraded else self.next_tier[tier]
            can_escalate = not forced and next_tier is not None and len(attempts) < self.max_escalations
            request = self._request_for(routed, tier, context)
            stream: AsyncIterator[TextDelta | Completion] | None = None
            first: TextDelta | Completion | None = None
            completion: Completion | None = None
            wall = time.perf_counter()
            try:
                if live and not can_escalate:
                    stream = self._stream(tier, request)
                    first = await anext(stream, None)  # failures before any text may still escalate or degrade
                else:
                    completion, elapsed = await self._complete(tier, request)
            except FrugalError as exc:
                if can_escalate and not (isinstance(exc, TierSaturatedError) and self.overflow == "reject"):
                    attempts.append(self._failed_attempt(tier, exc, time.perf_counter() - wall))
                    tier = next_tier
                    continue
                if not self._degrades(exc, tier, forced):
                    raise
                unavailable = isinstance(exc, TierUnavailableError)
                if unavailable:
                    self._mark_unavailable(tier)
                tier, final, degraded = self._skip_unavailable(
                    tier, forced, attempts, degraded, reason="unavailable" if unavailable else f"error: {exc.code}")
                if final is not None:
                    break
                continue
            if stream is not None:
                yield self._stream_started(routed, decision, attempts, tier, degraded)
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
            attempt = self._attempt(tier, completion, elapsed)
            attempts.append(attempt)
            if completion.sufficient or not can_escalate:
                final = attempt
                break
            context = completion.passages or context
            tier = next_tier
        if final is None or final.completion is None:
            raise TierUnavailableError("no tier could answer this request")
        if live and not streamed:
            yield self._stream_started(routed, decision, attempts, final.tier, degraded, partial=False,
                                       escalations=max(0, len(attempts) - 1))
            if final.completion.text:
                yield TextDelta(final.completion.text)
        outcome = self._outcome(routed, decision, attempts, final, degraded, created)
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
        self, tier: Tier, forced: bool, attempts: list[Attempt], degraded: str | None, reason: str = "unavailable"
    ) -> tuple[Tier | None, Attempt | None, str | None]:
        """Decide where an unavailable tier sends the request: (next tier, final attempt, degraded)."""
        if forced and reason == "warming":
            raise TierWarmingError(f"the {tier} tier is still loading (GET /healthz says 'warming'); "
                                   "retry in a few seconds", param="model")
        if forced:
            raise TierUnavailableError(
                LARGE_UNAVAILABLE_HELP if tier == "large" else f"the {tier} tier is not available", param="model"
            )
        attempts.append(Attempt(tier, "-", False, None, 0.0, Estimate.zero(), reason=reason))
        if tier != "large":
            return NEXT_TIER[tier], None, degraded
        if self.on_large_unavailable != "degrade" or degraded:
            raise TierUnavailableError(LARGE_UNAVAILABLE_HELP)
        if not any(a.tier == "small" for a in attempts):
            return "small", None, "large-unavailable"  # search_escalates_to: large still degrades to small
        answered = [a for a in attempts if a.completion is not None]
        if answered:
            return None, answered[-1], "large-unavailable"
        if any(a.reason == "warming" for a in attempts):
            raise TierWarmingError("the small tier is still loading its model (GET /healthz says 'warming') and "
                                   "the large tier is not available; retry in a few seconds")
        raise TierUnavailableError("neither the small nor the large tier is available; " + LARGE_UNAVAILABLE_HELP)

    def _request_for(self, routed: RoutedRequest, tier: Tier, context: list[Any]) -> CompletionRequest:
        name = f"{tier}.min_confidence"
        values = self.thresholds.values()
        return dataclasses.replace(
            routed.completion_request, context=context, min_confidence=values.get(name)
        )

    async def _complete(self, tier: Tier, request: CompletionRequest) -> tuple[Completion, float]:
        backend = self.backends[tier]
        async with self._slot(tier):
            wall = time.perf_counter()
            with backend_errors(tier, self.timeouts.get(tier), late="answer"):
                completion = await asyncio.wait_for(backend.complete(request), self.timeouts.get(tier, 60.0))
            elapsed = time.perf_counter() - wall
        self.metrics.observe_backend(tier, elapsed)
        return completion, elapsed

    async def _stream(self, tier: Tier, request: CompletionRequest) -> AsyncIterator[TextDelta | Completion]:
        backend = self.backends[tier]
        async with self._slot(tier):
            wall = time.perf_counter()
            with backend_errors(tier, self.timeouts.get(tier), late="finish"):
                async with asyncio.timeout(self.timeouts.get(tier, 60.0)):
                    async for event in backend.stream(request):
                        yield event
            self.metrics.observe_backend(tier, time.perf_counter() - wall)

    def _slot(self, tier: Tier) -> contextlib.AbstractAsyncContextManager[Any]:
        """The tier's limiter slot (429 when saturated), or nothing when the tier is not limited."""
        limiter = self.limiters.get(tier)
        return limiter.slot() if limiter is not None else contextlib.nullcontext()

    def _stream_started(
        self, routed: RoutedRequest, decision: _Decision, attempts: list[Attempt], route: Tier,
        degraded: str | None, *, partial: bool = True, escalations: int | None = None,
    ) -> StreamStarted:
        """Headers for a stream that starts now; ``attempts`` are the earlier ones unless ``escalations`` says."""
        spent = decision.estimate
        for attempt in attempts:
            spent = spent + attempt.estimate
        counterfactual = self.estimator.counterfactual(0)
        headers = frugal_headers(
            request_id=routed.request_id, route=route,
            escalations=len(attempts) if escalations is None else escalations, energy_wh=spent.energy_wh.value,
            co2e_g=spent.co2e_g.value, avoided_wh=(counterfactual.energy_wh - spent.energy_wh).value,
            degraded=degraded, partial=partial,
        )
        return StreamStarted(route=route, headers=headers)

    def _attempt(self, tier: Tier, completion: Completion, elapsed: float) -> Attempt:
        if completion.cpu_seconds is not None:
            estimate = self.estimator.local(completion.cpu_seconds)
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
            tier=tier, backend=self.backends[tier].name, sufficient=completion.sufficient,
            confidence=completion.confidence, latency_ms=elapsed * 1000, estimate=estimate,
            completion=completion, reason=completion.reason,
        )

    def _failed_attempt(self, tier: Tier, exc: FrugalError, elapsed: float) -> Attempt:
        """A failed try: its wall time is kept; its energy is not measured (the backend reported none)."""
        log.info("the %s tier failed (%s); escalating", tier, exc.code)
        return Attempt(tier, self.backends[tier].name, False, None, elapsed * 1000, Estimate.zero(),
                       reason=f"error: {exc.code}", error=exc.code)

    def _outcome(
        self, routed: RoutedRequest, decision: _Decision, attempts: list[Attempt], final: Attempt,
        degraded: str | None, created: int,
    ) -> Outcome:
        assert final.completion is not None
        total = decision.estimate
        for attempt in attempts:
            total = total + attempt.estimate
        answered = [a.completion for a in attempts if a.completion is not None]
        large = [a for a in attempts if a.tier == "large" and a.completion is not None]
        prompt_tokens = max((c.prompt_tokens for c in answered), default=0)
        counterfactual = large[-1].estimate if large else self.estimator.counterfactual(prompt_tokens)
        return Outcome(
            request_id=routed.request_id, created=created, requested_model=routed.requested_model,
            route=final.tier, forced=routed.forced_tier is not None, scores=decision.scores, attempts=attempts,
            completion=final.completion, estimate=total, counterfactual=counterfactual,
            decision_ms=decision.decision_ms, degraded=degraded, flags=list(total.flags),
        )
