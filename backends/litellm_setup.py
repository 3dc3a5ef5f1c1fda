"""The large tier's configuration (targets and options) and how provider failures are read.

Kept apart from ``backends.litellm_backend`` so that the backend reads as calling and judging; these are
pure functions of an exception or a config, tested through the backend.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from backends.prompting import DEFAULT_MAX_PASSAGE_CHARS
from backends.sufficiency import DEFAULT_MIN_CONFIDENCE


class Target(BaseModel):
    """One model to call: the primary or a fallback."""

    model_config = ConfigDict(extra="forbid")

    model: str
    api_base: str | None = None
    api_key_env: str | None = None


class LiteLLMOptions(BaseModel):
    """``options`` of a litellm tier."""

    model_config = ConfigDict(extra="forbid")

    fallbacks: list[str | Target] = Field(default_factory=list, description="tried in order when a target fails")
    num_retries: int = Field(default=0, ge=0, le=10, description="litellm retries per target")
    health_probe: bool = Field(default=True, description="GET {api_base}/models in health()")
    min_confidence: float = Field(default=DEFAULT_MIN_CONFIDENCE, ge=0, le=1, description="non-large tiers only")
    max_passage_chars: int = Field(default=DEFAULT_MAX_PASSAGE_CHARS, ge=100)
    extra_params: dict[str, Any] = Field(default_factory=dict, description="passed to litellm.acompletion")
    fast_path: bool = Field(default=True, description="call OpenAI-compatible targets (openai/…, hosted_vllm/…) "
                            "directly with a keep-alive client instead of through litellm (backends.openai_fast)")


def retry_after_of(exc: Exception) -> float | None:
    """The provider's ``Retry-After`` seconds, when its error carries the header."""
    for holder in (getattr(exc, "response", None), exc):
        headers = getattr(holder, "headers", None) or getattr(holder, "litellm_response_headers", None)
        if headers is not None:
            try:
                value = headers.get("retry-after") or headers.get("Retry-After")
            except AttributeError:
                value = None
            if value:
                try:
                    return float(value)
                except ValueError:
                    return None
    return None


def unreachable(exc: BaseException) -> bool:
    """Whether the cause chain shows the server could not be reached (litellm reports it as a 500)."""
    import httpx

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (httpx.ConnectError, ConnectionError)):
            return True
        if type(current).__name__ == "APIConnectionError" and type(current).__module__.startswith("openai"):
            return True
        current = current.__cause__ or current.__context__
    return False


def is_malformed(detail: str) -> bool:
    """Whether a provider error says its answer could not be parsed (a 502, not the client's fault)."""
    lowered = detail.lower()
    return any(marker in lowered for marker in ("expecting value", "json", "unterminated string", "validation error"))


def litellm_kind(exc: Exception, detail: str) -> str | None:
    """The kind of a litellm exception (``map_error``'s table)."""
    import litellm

    status = getattr(exc, "status_code", None)
    if isinstance(exc, litellm.ContextWindowExceededError):
        return "context"
    if isinstance(exc, (litellm.Timeout, TimeoutError, asyncio.TimeoutError)):
        return "timeout"
    if isinstance(exc, litellm.RateLimitError):
        return "rate_limit"
    if isinstance(exc, (litellm.AuthenticationError, litellm.PermissionDeniedError)) or status in (401, 403):
        return "auth"
    if isinstance(exc, litellm.NotFoundError) or status == 404:
        return "not_found"
    if isinstance(exc, (litellm.BadRequestError, litellm.UnprocessableEntityError)):
        return "bad_request"
    if isinstance(exc, (litellm.ServiceUnavailableError, litellm.BadGatewayError, litellm.APIConnectionError)) or (
            unreachable(exc)):
        return "unreachable"
    if isinstance(exc, litellm.InternalServerError):
        return "malformed" if is_malformed(detail) else "server_error"
    return None
