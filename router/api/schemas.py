"""OpenAI chat-completion request and response shapes, as real clients send and expect them.

The request model accepts what the official SDKs send (content as a string or a list of parts,
``max_completion_tokens``, ``stream_options``, tools …) and keeps every other field as sent, so that a
served tier receives it unchanged (``router.core.capabilities`` says which tiers may answer); what no
tier can honour (``n`` > 1, an unknown content-part type) is a clear 400.
Types are as strict as OpenAI's: ``"stream": "false"`` or ``"max_tokens": true`` is a 422 naming the
parameter, never read as ``False`` or ``1``; a whole number is still a valid ``temperature``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StrictBool, StrictInt

from router.core import Message
from router.core.capabilities import PART_CAPABILITY
from router.core.errors import InvalidRequestError

ROLES = ("system", "developer", "user", "assistant", "tool", "function")


class TextPart(BaseModel):
    """One part of a list-valued message content."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessageIn(BaseModel):
    """An incoming chat message."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self, index: int) -> str:
        """The content's text parts flattened to text (image, audio and file parts are routed on, not read)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        pieces = []
        for part_index, part in enumerate(self.content):
            if part.type not in PART_CAPABILITY:
                raise InvalidRequestError(
                    f"messages[{index}].content[{part_index}] has type {part.type!r}; supported part types: "
                    f"{', '.join(PART_CAPABILITY)}", param=f"messages.{index}.content.{part_index}.type")
            if part.type == "text":
                if part.text is None:
                    raise InvalidRequestError(f"messages[{index}].content[{part_index}] is a text part without text",
                                              param=f"messages.{index}.content.{part_index}.text")
                pieces.append(part.text)
        return "\n".join(pieces)

    def has_media(self) -> bool:
        """Whether the content holds image, audio or file parts."""
        return isinstance(self.content, list) and any(PART_CAPABILITY.get(part.type) for part in self.content)


class StreamOptions(BaseModel):
    """OpenAI's ``stream_options``."""

    model_config = ConfigDict(extra="allow")

    include_usage: StrictBool = False


class ChatCompletionRequest(BaseModel):
    """The body of ``POST /v1/chat/completions``."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatMessageIn]
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2, strict=True)  # strict floats still take ints
    top_p: float | None = Field(default=None, ge=0, le=1, strict=True)
    max_tokens: StrictInt | None = Field(default=None, ge=1)
    max_completion_tokens: StrictInt | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: StrictInt | None = Field(default=None, ge=-(2**63), le=2**63 - 1)
    user: str | None = None
    n: StrictInt | None = Field(default=None, ge=1)
    _payload: dict[str, Any] = PrivateAttr(default_factory=dict)

    #: Fields Frugal reads itself; every other field is passed to a served tier as sent (``passthrough``).
    CONSUMED: ClassVar[tuple[str, ...]] = ("model", "messages", "stream", "stream_options", "temperature", "top_p",
                                 "max_tokens", "max_completion_tokens", "stop", "seed", "user", "n")

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> ChatCompletionRequest:
        """Validate a parsed body, keeping it as sent for pass-through."""
        chat = cls.model_validate(payload)
        chat._payload = payload
        return chat

    def raw_payload(self) -> dict[str, Any]:
        """The body as the client sent it."""
        return self._payload

    def raw_messages(self) -> list[dict[str, Any]]:
        """The messages exactly as the client sent them."""
        return list(self._payload.get("messages") or [])

    def passthrough(self) -> dict[str, Any]:
        """Every field the client sent that Frugal does not read itself (tools, response_format, unknown …)."""
        return {name: value for name, value in self._payload.items() if name not in self.CONSUMED}

    def flat_messages(self) -> list[Message]:
        """The conversation with contents flattened to text."""
        return [Message(role=m.role, content=m.text(i)) for i, m in enumerate(self.messages)]

    def stop_list(self) -> list[str]:
        """``stop`` as a list."""
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def wanted_tokens(self) -> int | None:
        """The output-token limit the client asked for (``max_completion_tokens`` wins)."""
        return self.max_completion_tokens or self.max_tokens


def completion_body(
    *, request_id: str, created: int, model: str, text: str, finish_reason: str, usage: dict[str, Any],
    frugal: dict[str, Any], message_fields: dict[str, Any] | None = None, logprobs: Any = None,
) -> dict[str, Any]:
    """A non-streaming ``chat.completion`` object with the ``frugal`` extension.

    ``message_fields`` (tool calls, refusal …) and ``logprobs`` are the answering upstream's, unchanged; a
    message that carries tool calls and no text has ``content: null``, as OpenAI's.
    """
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None, **(message_fields or {})}
    if not text and (message.get("tool_calls") or message.get("function_call")):
        message["content"] = None
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": logprobs,
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage,
        "frugal": frugal,
    }


def chunk_body(
    *, request_id: str, created: int, model: str, delta: dict[str, Any], finish_reason: str | None,
    usage: dict[str, Any] | None = None, frugal: dict[str, Any] | None = None, empty_choices: bool = False,
    logprobs: Any = None,
) -> dict[str, Any]:
    """One ``chat.completion.chunk`` object."""
    choices: list[dict[str, Any]] = []
    if not empty_choices:
        choices = [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}]
    body: dict[str, Any] = {
        "id": request_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": choices,
    }
    if usage is not None:
        body["usage"] = usage
    if frugal is not None:
        body["frugal"] = frugal
    return body
