"""Back-pressure: bounded work per tier and for the whole server, refused with 429 and ``Retry-After``.

A tier that is asked for more than it can serve (a 135M model on two cores, a provider with a rate
limit) must say so early, not let a queue grow until every request times out. Each tier admits
``max_concurrency`` requests at once; more may wait, each at most ``limits.tier_max_wait_s``, as long as
the wait expected from the tier's recent service times fits in that budget (a 3 ms search tier can
absorb hundreds of waiting requests, a 5 s small model one or two) and no more than ``limits.tier_queue``
wait; anything beyond is a ``TierSaturatedError`` (429) at once, whose ``Retry-After`` is that same
estimate. Refusing only work that cannot be done in time keeps goodput at the peak under overload:
a refusal still costs parsing and a response, so refusing work the tier could have done is waste.
In automatic routing a saturated cheap tier passes the request to the next tier instead
(``limits.overflow: escalate``, the default) or answers 429 (``reject``). The global cap
``limits.max_in_flight`` bounds the chat requests the server works on at once, streams included until
their last byte, and refuses the excess at once (no queue).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from router.core import CompletionRequest
from router.core.errors import RateLimitError, TierSaturatedError

MAX_RETRY_AFTER_S = 60.0


class Limiter:
    """At most ``capacity`` holders at once; up to ``max_queue`` waiters, each for at most ``max_wait_s``."""

    def __init__(self, name: str, capacity: int, *, max_queue: int = 0, max_wait_s: float = 0.0,
                 metrics: LimitMetrics | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"{name}: capacity must be at least 1")
        self.name = name
        self.capacity = capacity
        self.max_queue = max(0, max_queue)
        self.max_wait_s = max(0.0, max_wait_s)
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._mean_s: float | None = None  # recent mean time a slot is held; unknown until one is released
        self._rejected = metrics.rejected.labels(scope=name) if metrics is not None else None
        if metrics is not None:  # read at scrape time: nothing to update on the request path
            metrics.in_flight.labels(scope=name).set_function(lambda: float(self.in_flight))
            metrics.queued.labels(scope=name).set_function(lambda: float(self.waiting))

    @property
    def waiting(self) -> int:
        """Requests waiting for a slot now."""
        return sum(1 for waiter in self._waiters if not waiter.done())

    def expected_wait_s(self) -> float:
        """Seconds a request queued now is expected to wait: the requests ahead of it over the slots, times the
        recent mean time a slot is held."""
        return (self.waiting + 1) / self.capacity * (1.0 if self._mean_s is None else self._mean_s)

    def retry_after(self) -> float:
        """Seconds after which a refused request may find a free slot (from recent service times)."""
        return min(MAX_RETRY_AFTER_S, max(1.0, self.expected_wait_s()))

    async def acquire(self) -> None:
        """Take a slot, waiting in FIFO order when allowed; raise a 429 error when none can be had."""
        if self.in_flight < self.capacity and not self.waiting:
            self._take()
            return
        if self.waiting >= self.max_queue or self.max_wait_s <= 0:
            raise self._refuse(f"{self.in_flight} in flight and {self.waiting} waiting")
        if self._mean_s is not None and self.expected_wait_s() > self.max_wait_s:  # it would time out: refuse now
            raise self._refuse(f"{self.in_flight} in flight and {self.waiting} waiting, an expected wait of "
                               f"{self.expected_wait_s():.1f} s > {self.max_wait_s:g} s")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.max_wait_s):
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot was handed over just as we gave up: pass it on
            else:
                waiter.cancel()
                self._discard(waiter)
            if isinstance(exc, TimeoutError):
                raise self._refuse(f"no free slot within {self.max_wait_s:g} s") from None
            raise

    def release(self, held_s: float | None = None) -> None:
        """Give a slot back, handing it to the oldest waiter if there is one."""
        if held_s is not None:
            self._mean_s = held_s if self._mean_s is None else 0.8 * self._mean_s + 0.2 * held_s
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.in_flight = max(0, self.in_flight - 1)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a slot for the body of the ``async with``."""
        await self.acquire()
        started = time.monotonic()
        try:
            yield
        finally:
            self.release(time.monotonic() - started)

    def _take(self) -> None:
        self.in_flight += 1

    def _discard(self, waiter: asyncio.Future[None]) -> None:
        try:
            self._waiters.remove(waiter)
        except ValueError:
            pass

    def _refuse(self, why: str) -> RateLimitError:
        if self._rejected is not None:
            self._rejected.inc()
        if self.name == "server":
            return RateLimitError(f"the server is at its limit of {self.capacity} requests in flight ({why}); "
                                  "retry later", retry_after=self.retry_after(), code="server_busy")
        return TierSaturatedError(
            f"the {self.name} tier is saturated ({why}; max_concurrency={self.capacity}); retry later",
            retry_after=self.retry_after())


class LimitMetrics:
    """Prometheus series for the limiters, on the app's own registry."""

    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter, Gauge

        self.rejected = Counter("frugal_rejected", "Requests refused with 429 by a limiter (server or tier)",
                                ("scope",), registry=registry)
        self.in_flight = Gauge("frugal_in_flight", "Requests holding a slot, by limiter", ("scope",), registry=registry)
        self.queued = Gauge("frugal_queued", "Requests waiting for a tier slot, by limiter", ("scope",),
                            registry=registry)


class Lease:
    """One admitted request's hold on the server-wide slot; releasing it twice is harmless."""

    def __init__(self, limiter: Limiter) -> None:
        self._limiter = limiter
        self._started = time.monotonic()
        self._held = True

    def release(self) -> None:
        """Give the slot back (idempotent)."""
        if self._held:
            self._held = False
            self._limiter.release(time.monotonic() - self._started)

    def transfer(self) -> Lease:
        """Move the hold to a new lease (a streaming response's); releasing this one becomes a no-op."""
        moved = Lease(self._limiter)
        moved._started, moved._held = self._started, self._held
        self._held = False
        return moved


class Limits:
    """The server-wide limiter and one limiter per tier, built from settings."""

    def __init__(self, server: Limiter, tiers: Mapping[str, Limiter], overflow: str = "escalate") -> None:
        self.server = server
        self.tiers = dict(tiers)
        self.overflow = overflow

    @classmethod
    def from_settings(cls, settings: Any, registry: Any = None) -> Limits:
        """Limiters for ``settings.limits`` and each tier's ``max_concurrency``."""
        limits = settings.limits
        metrics = LimitMetrics(registry) if registry is not None else None
        server = Limiter("server", limits.max_in_flight, metrics=metrics)
        tiers = {
            tier: Limiter(tier, config.max_concurrency, max_queue=limits.tier_queue,
                          max_wait_s=limits.tier_max_wait_s, metrics=metrics)
            for tier, config in settings.tier_configs().items()
        }
        return cls(server, tiers, limits.overflow)

    async def admit(self) -> Lease:
        """A server-wide slot for one chat request, or a 429 ``RateLimitError`` at once."""
        await self.server.acquire()
        return Lease(self.server)


@dataclasses.dataclass(frozen=True)
class DegradedBudget:
    """What a degraded answer (the small tier standing in for the large one) may spend: tokens and seconds."""

    max_tokens: int
    timeout_s: float

    def applied(self, request: CompletionRequest) -> CompletionRequest:
        """``request`` with its ``max_tokens`` capped by the budget."""
        wanted = request.max_tokens
        return dataclasses.replace(request, max_tokens=min(wanted, self.max_tokens) if wanted else self.max_tokens)

    def to_dict(self) -> dict[str, float]:
        """The budget as ``frugal.degraded_budget`` states it."""
        return {"max_tokens": self.max_tokens, "timeout_s": self.timeout_s}
