"""One tier as the dispatcher sees it: its backend, its limiter slot, its time budget and its known health.

The backend only answers; everything around the call is here, once: admission (``router.limits``, 429
when saturated), the time budget (the backend's own, so that a backend with fallbacks gets time for
them), the translation of what a backend raises, the service-time metric, and the health the routing
reads. Health is probed in the background (``HealthMonitor``) so that requests read a cached answer;
a runner nobody monitors (a test, ``frugal ask``) probes when its answer is older than ``HEALTH_TTL_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING

from router.core import Backend, Completion, CompletionRequest, Health, StreamEvent, Tier
from router.core.errors import BackendTimeoutError, FrugalError

if TYPE_CHECKING:
    from router.limits import Limiter
    from router.metrics import Metrics

log = logging.getLogger(__name__)

HEALTH_TTL_S = 2.0


@contextlib.contextmanager
def backend_errors(tier: Tier, timeout_s: float, *, late: str) -> Iterator[None]:
    """Translate what a backend call raises: a timeout to a 504, any non-Frugal exception to ``backend_error``.

    The latter is an unexpected exception inside a backend; the pipeline records it and may escalate past it.
    """
    try:
        yield
    except TimeoutError as exc:
        raise BackendTimeoutError(f"the {tier} tier did not {late} within {timeout_s:g} s") from exc
    except FrugalError:
        raise
    except Exception as exc:
        log.error("the %s tier raised %s", tier, type(exc).__name__, exc_info=exc)
        raise FrugalError(f"the {tier} tier failed unexpectedly ({type(exc).__name__}); see the server log",
                          code="backend_error") from exc


class TierRunner:
    """Calls one tier's backend within its limiter slot and time budget, and knows whether it can answer."""

    def __init__(self, tier: Tier, backend: Backend, *, timeout_s: float = 60.0, limiter: Limiter | None = None,
                 metrics: Metrics | None = None) -> None:
        self.tier = tier
        self.backend = backend
        self.limiter = limiter
        self.metrics = metrics
        self.timeout_s = backend.time_budget_s(timeout_s)
        self.monitored = False  # set by HealthMonitor: requests then never probe
        self._health = Health(ready=False, detail="not probed yet")
        self._fresh_until = 0.0

    @property
    def name(self) -> str:
        """The backend's name, as attempts record it."""
        return self.backend.name

    @property
    def capabilities(self) -> frozenset[str]:
        """What this tier honours beyond plain text (``router.core.capabilities``)."""
        return self.backend.capabilities()

    async def health(self) -> Health:
        """The last known health; probed now only when nobody monitors this tier and the answer is stale."""
        if not self.monitored and time.monotonic() >= self._fresh_until:
            await self.probe()
        return self._health

    async def probe(self) -> Health:
        """Ask the backend now; a probe that fails counts as not ready (it never fails a request)."""
        try:
            health = await self.backend.health()
        except Exception as exc:
            log.warning("health check of the %s tier failed", self.tier, exc_info=True)
            health = Health(ready=False, detail=f"health check failed: {type(exc).__name__}")
        self._health, self._fresh_until = health, time.monotonic() + HEALTH_TTL_S
        return health

    @property
    def last_health(self) -> Health:
        """The last known health, without probing."""
        return self._health

    def budget_s(self, timeout_s: float | None = None) -> float:
        """The time one call may take: the tier's own budget, or a tighter ``timeout_s`` (a degraded answer's)."""
        return self.timeout_s if timeout_s is None else min(self.timeout_s, self.backend.time_budget_s(timeout_s))

    def mark_unavailable(self, detail: str = "the last request could not connect") -> None:
        """Remember that the tier just failed to connect, until the next probe."""
        self._health, self._fresh_until = Health(ready=False, detail=detail), time.monotonic() + HEALTH_TTL_S

    async def complete(self, request: CompletionRequest, timeout_s: float | None = None) -> tuple[Completion, float]:
        """The backend's whole answer and the seconds it took (slot wait excluded), within ``budget_s(timeout_s)``."""
        budget = self.budget_s(timeout_s)
        async with self._slot():
            wall = time.perf_counter()
            with backend_errors(self.tier, budget, late="answer"):
                async with asyncio.timeout(budget):  # in the request's task: no task of its own (wait_for's)
                    completion = await self.backend.complete(request)
            elapsed = time.perf_counter() - wall
        self._observe(elapsed)
        return completion, elapsed

    async def stream(self, request: CompletionRequest, timeout_s: float | None = None) -> AsyncIterator[StreamEvent]:
        """The backend's stream: text deltas, then the final ``Completion``, within ``budget_s(timeout_s)``."""
        budget = self.budget_s(timeout_s)
        async with self._slot():
            wall = time.perf_counter()
            with backend_errors(self.tier, budget, late="finish"):
                async with asyncio.timeout(budget):
                    async for event in self.backend.stream(request):
                        yield event
            self._observe(time.perf_counter() - wall)

    def _slot(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self.limiter.slot() if self.limiter is not None else contextlib.nullcontext()

    def _observe(self, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.observe_backend(self.tier, seconds)


class HealthMonitor:
    """Probes every tier in the background, so that no request waits for a health check."""

    def __init__(self, runners: Mapping[str, TierRunner], interval_s: float = HEALTH_TTL_S) -> None:
        self.runners = dict(runners)
        self.interval_s = interval_s

    async def probe_all(self) -> None:
        """Probe every tier once, concurrently."""
        await asyncio.gather(*(runner.probe() for runner in self.runners.values()))

    async def run(self) -> None:
        """Probe every ``interval_s`` until cancelled; requests read the cached answers meanwhile."""
        await self.probe_all()
        for runner in self.runners.values():
            runner.monitored = True
        try:
            while True:
                await asyncio.sleep(self.interval_s)
                await self.probe_all()
        finally:
            for runner in self.runners.values():
                runner.monitored = False
