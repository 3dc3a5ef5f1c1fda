"""The Backend contract: one required method, ``complete``; the base class owns the rest.

A backend answers a request for one tier and judges its own answer (``Completion.sufficient``):
the dispatcher escalates to the next tier when a backend says its answer is not good enough.
Streaming defaults to one delta holding the whole answer; backends that can stream token by token
override ``stream``. Backends are async; CPU-bound ones run their work in a thread.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

Tier = Literal["search", "small", "large"]
TIERS: tuple[Tier, ...] = ("search", "small", "large")


@dataclass(frozen=True)
class Message:
    """One chat message with its content flattened to text."""

    role: str
    content: str


@dataclass(frozen=True)
class Source:
    """Where an answer came from (a document of the search index)."""

    title: str
    url: str | None = None
    id: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        """The source as the ``frugal.sources`` entry."""
        return {"title": self.title, "url": self.url, "id": self.id}


@dataclass(frozen=True)
class Passage:
    """A retrieved passage, handed to the next tier as grounding context."""

    text: str
    source: Source
    score: float = 0.0


@dataclass
class CompletionRequest:
    """What a backend is asked to answer: the conversation plus generation parameters.

    ``context`` holds passages retrieved by a lower tier (ground the answer on them when present);
    ``min_confidence`` is the tier's live gate threshold, set by the dispatcher from the admin
    thresholds: a backend reports ``sufficient=False`` when its confidence falls below it.
    """

    messages: list[Message]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    user: str | None = None
    context: list[Passage] = field(default_factory=list)
    request_id: str = ""
    min_confidence: float | None = None

    def last_user_text(self) -> str:
        """The content of the last user message ('' when there is none)."""
        for message in reversed(self.messages):
            if message.role == "user":
                return message.content
        return ""


@dataclass
class Completion:
    """A backend's answer, with what the dispatcher needs to judge, account and report it."""

    text: str
    model: str
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    sufficient: bool = True
    confidence: float | None = None
    reason: str | None = None
    cpu_seconds: float | None = None
    sources: list[Source] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # e.g. "tokens_estimated": no usage came with the answer


@dataclass(frozen=True)
class TextDelta:
    """A piece of answer text while streaming."""

    text: str


StreamEvent = TextDelta | Completion


@dataclass(frozen=True)
class Health:
    """Whether a backend can answer now, and why not."""

    ready: bool
    detail: str = ""
    warming: bool = False  # still loading at start-up: not ready yet, and not broken


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
        if completion.text:
            yield TextDelta(completion.text)
        yield completion

    async def start(self) -> None:
        """Load what the first request would otherwise wait for (idempotent); the default loads nothing."""

    async def health(self) -> Health:
        """Report readiness; the default is always ready."""
        return Health(ready=True)

    async def aclose(self) -> None:
        """Release resources (models, clients, index readers)."""
