"""The Backend contract: one required method, ``complete``; the base class owns the rest.

A backend answers a request for one tier and judges its own answer (``Completion.sufficient``):
the dispatcher escalates to the next tier when a backend says its answer is not good enough.
Streaming defaults to one delta holding the whole answer; backends that can stream token by token
override ``stream``. Backends are async; CPU-bound ones run their work in a thread. Concurrency,
timeouts and health caching are the router's (``router.tier_runner``), not the backend's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass

from router.core.tiers import Tier
from router.core.types import Completion, CompletionRequest, StreamEvent, TextDelta, delta_fields


@dataclass(frozen=True)
class Health:
    """Whether a backend can answer now, and why not."""

    ready: bool
    detail: str = ""
    warming: bool = False  # still loading at start-up: not ready yet, and not broken
    configured: bool = True  # False: nothing is configured to answer (e.g. no model set), so ``detail`` says how


class Backend(ABC):
    """Answers requests for one tier. Subclasses implement ``complete``; the rest has defaults."""

    tier: Tier
    name: str

    def __init__(self, *, tier: Tier, name: str) -> None:
        self.tier = tier
        self.name = name

    @abstractmethod
    async def complete(self, request: CompletionRequest) -> Completion:
        """Answer the request in full and judge the answer's sufficiency."""

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        """Yield text deltas, then the final ``Completion`` (whose text is the whole answer)."""
        completion = await self.complete(request)
        if completion.text or completion.message_fields:
            yield TextDelta(completion.text, delta_fields(completion.message_fields), completion.logprobs)
        yield completion

    def capabilities(self) -> frozenset[str]:
        """What this backend honours beyond plain text (``router.core.capabilities``); the default: nothing."""
        return frozenset()

    def applied_params(self) -> frozenset[str] | None:
        """The OpenAI fields beyond the common ones (messages, sampling, limits) this backend applies; None: it
        passes every field to its upstream. Fields a tier does not apply are listed in ``frugal.ignored_params``."""
        return frozenset()

    def work_name(self) -> str | None:
        """The name whose measured per-call and per-token energy prices this backend's local work (``energy.work``,
        the ``model`` of its completions); None for a remote model, priced per token by the impact model."""
        return None

    async def start(self) -> None:
        """Load what the first request would otherwise wait for (idempotent); the default loads nothing."""

    def time_budget_s(self, timeout_s: float) -> float:
        """The longest one call may take, given the tier's ``timeout_s``; backends that retry or fall back say more."""
        return timeout_s

    async def health(self) -> Health:
        """Report readiness; the default is always ready."""
        return Health(ready=True)

    async def aclose(self) -> None:
        """Release resources (models, clients, index readers)."""
