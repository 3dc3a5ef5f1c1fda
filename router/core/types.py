"""The values that cross every layer: messages, the request a tier answers, its completion, stream deltas.

Plain dataclasses with no behaviour beyond small helpers, so that backends, classifiers and the router
can share them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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


@dataclass(frozen=True)
class Evidence:
    """Where an answer drawn from documents stands: its sentence(s), the passage, and the span when identified."""

    sentences: list[str]
    passage: Passage
    span: str | None = None  # the words that answer the question (a date, a number, a name) when identified

    def to_dict(self) -> dict[str, object]:
        """The evidence as the ``frugal.evidence`` entry."""
        return {"sentences": list(self.sentences), "span": self.span,
                "passage": {"text": self.passage.text, "score": self.passage.score, **self.passage.source.to_dict()}}


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
    evidence: Evidence | None = None  # an answer quoted from documents: where it stands in them
    flags: list[str] = field(default_factory=list)  # e.g. "tokens_estimated": no usage came with the answer


@dataclass(frozen=True)
class TextDelta:
    """A piece of answer text while streaming."""

    text: str


StreamEvent = TextDelta | Completion
