"""OpenAI chat-completion request and response shapes, as real clients send and expect them.

The request model accepts what the official SDKs send (content as a string or a list of text parts,
``max_completion_tokens``, ``stream_options`` …) and ignores fields Frugal does not use, so existing
client code works unchanged; what Frugal cannot honour (``n`` > 1, non-text content) is a clear 400.
Types are as strict as OpenAI's: ``"stream": "false"`` or ``"max_tokens": true`` is a 422 naming the
parameter, never read as ``False`` or ``1``; a whole number is still a valid ``temperature``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from router.core import Message
from router.core.errors import InvalidRequestError

ROLES = ("system", "developer", "user", "assistant", "tool")


class TextPart(BaseModel):
    """One part of a list-valued message content."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessageIn(BaseModel):
    """An incoming chat message."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self, index: int) -> str:
        """The content flattened to text; non-text parts are a 400."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        pieces = []
        for part_index, part in enumerate(self.content):
            if part.type != "text" or part.text is None:
                raise InvalidRequestError(
                    f"messages[{index}].content[{part_index}] has type {part.type!r}; only text parts are supported",
                    param=f"messages.{index}.content.{part_index}.type",
                )
            pieces.append(part.text)
        return "\n".join(pieces)


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
    *, request_id: str, created: int, model: str, text: str, finish_reason: str, usage: dict[str, int],
    frugal: dict[str, Any],
) -> dict[str, Any]:
    """A non-streaming ``chat.completion`` object with the ``frugal`` extension."""
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage,
        "frugal": frugal,
    }


def chunk_body(
    *, request_id: str, created: int, model: str, delta: dict[str, Any], finish_reason: str | None,
    usage: dict[str, int] | None = None, frugal: dict[str, Any] | None = None, empty_choices: bool = False,
) -> dict[str, Any]:
    """One ``chat.completion.chunk`` object."""
    choices: list[dict[str, Any]] = []
    if not empty_choices:
        choices = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
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
