"""The values that cross every layer: messages, the request a tier answers, its completion, stream deltas.

Plain dataclasses with no behaviour beyond small helpers, so that backends, classifiers and the router
can share them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    ``raw_messages`` and ``params`` are the client's messages and other OpenAI fields exactly as sent
    (tools, response_format, logprobs, unknown fields …), for backends that pass requests through to an
    OpenAI-compatible upstream; ``needs`` is what the request needs of a tier (``router.core.capabilities``).
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
    raw_messages: list[dict[str, Any]] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    needs: frozenset[str] = frozenset()
    max_tokens_param: str = "max_tokens"  # the name the client used (``max_completion_tokens`` is passed as such)

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
    message_fields: dict[str, Any] = field(default_factory=dict)  # the upstream message's other fields (tool_calls …)
    logprobs: Any = None  # the choice's logprobs as the upstream sent them
    usage_details: dict[str, Any] = field(default_factory=dict)  # the upstream usage's other fields (token details)


@dataclass(frozen=True)
class TextDelta:
    """A piece of answer text while streaming, with the delta's other fields (tool-call deltas …) and logprobs."""

    text: str
    fields: dict[str, Any] | None = None
    logprobs: Any = None


StreamEvent = TextDelta | Completion


def delta_fields(message_fields: dict[str, Any]) -> dict[str, Any] | None:
    """A whole answer's message fields as one stream delta's (each tool call gets its ``index``)."""
    if not message_fields:
        return None
    fields = dict(message_fields)
    if isinstance(fields.get("tool_calls"), list):
        fields["tool_calls"] = [{"index": i, **call} if isinstance(call, dict) else call
                                for i, call in enumerate(fields["tool_calls"])]
    return fields


def merge_tool_call_deltas(calls: list[dict[str, Any]], deltas: list[Any]) -> None:
    """Fold streamed ``tool_calls`` deltas into whole calls (by ``index``; arguments are concatenated)."""
    for delta in deltas:
        if not isinstance(delta, dict):
            continue
        index = delta.get("index", len(calls))
        while len(calls) <= index:
            calls.append({"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
        call = calls[index]
        if delta.get("id"):
            call["id"] = delta["id"]
        if delta.get("type"):
            call["type"] = delta["type"]
        function = delta.get("function") or {}
        name = function.get("name")
        if name and name != call["function"]["name"]:  # some servers repeat the whole name in every delta
            call["function"]["name"] += name
        if function.get("arguments"):
            call["function"]["arguments"] += function["arguments"]
