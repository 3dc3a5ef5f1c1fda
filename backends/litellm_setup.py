"""The large tier's configuration (targets and options) and how provider failures are read.

Kept apart from ``backends.litellm_backend`` so that the backend reads as calling and judging; these are
pure functions of an exception or a config, tested through the backend.
"""

from __future__ import annotations

import asyncio
import os
import re
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
    capabilities: list[str] | None = Field(default=None, description="what this model honours (tools, json_object, "
                                           "json_schema, logprobs, images, audio, files); default: what litellm "
                                           "knows of the provider and model")


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
    capabilities: list[str] | None = Field(default=None, description="what the primary model honours; default: "
                                           "what litellm knows of its provider and model (docs/API.md)")


PLACEHOLDER_KEY = "sk-no-key-required"
_SECRET_ENV = re.compile(r"(?:API_KEY|_KEY|_TOKEN|_SECRET)$", re.IGNORECASE)
_KEY_LIKE = re.compile(r"\b(?:sk|pk|key)-[A-Za-z0-9_\-]{12,}|(?<=Bearer )[A-Za-z0-9._\-]{12,}")


def scrub(text: str, keys: set[Any]) -> str:
    """``text`` with ``keys`` and every secret-looking environment value replaced by ``***``, cut to 400 characters."""
    text = str(text)
    # with no api_key_env, litellm reads the provider's own variable (OPENAI_API_KEY, ...)
    secrets = set(keys) | {value for name, value in os.environ.items() if _SECRET_ENV.search(name)}
    for secret in sorted((s for s in secrets if isinstance(s, str) and len(s) >= 8 and s != PLACEHOLDER_KEY),
                         key=len, reverse=True):
        text = text.replace(secret, "***")
    return _KEY_LIKE.sub("***", text)[:400]


def target_capabilities(targets: list[Target], options: LiteLLMOptions, tier: str) -> list[frozenset[str]]:
    """Each target's capabilities: declared (``options.capabilities``, a fallback's ``capabilities``) or known."""
    from router.core.capabilities import check_declared

    found = []
    for index, target in enumerate(targets):
        declared = options.capabilities if index == 0 else target.capabilities
        setting = f"{tier}.options.capabilities" if index == 0 else f"{tier}.options.fallbacks[{index - 1}].capabilities"
        found.append(check_declared(declared, setting) if declared is not None else known_capabilities(target.model))
    return found


def known_capabilities(model: str) -> frozenset[str]:
    """What litellm knows a model honours: from its provider's supported OpenAI params and its model map.

    A provider that speaks OpenAI's chat API (``openai/…`` with any ``api_base``, ``hosted_vllm/…``) is taken to
    honour what that API offers — tools, both JSON formats, logprobs; media parts only when litellm's model map
    says so (a self-hosted name is unknown to it: declare them with ``options.capabilities``).
    """
    import litellm

    from router.core.capabilities import AUDIO, FILES, IMAGES, JSON_OBJECT, JSON_SCHEMA, LOGPROBS, TOOLS

    provider, _, name = model.partition("/")
    try:
        params = set(litellm.get_supported_openai_params(model=name or model, custom_llm_provider=provider) or ())
    except Exception:  # noqa: BLE001 - an unknown provider honours nothing beyond text until declared
        params = set()
    found: set[str] = set()
    if "tools" in params:
        found.add(TOOLS)
    if "response_format" in params:
        found.add(JSON_OBJECT)
        if provider in ("openai", "hosted_vllm") or _supports(litellm.supports_response_schema, model):
            found.add(JSON_SCHEMA)
    if "logprobs" in params:
        found.add(LOGPROBS)
    for capability, check in ((IMAGES, "supports_vision"), (AUDIO, "supports_audio_input"),
                              (FILES, "supports_pdf_input")):
        if _supports(getattr(litellm, check, None), model):
            found.add(capability)
    return frozenset(found)


def _supports(check: Any, model: str) -> bool:
    """litellm's ``supports_*`` answer for a model; False when it does not know the model."""
    if check is None:
        return False
    try:
        return bool(check(model=model))
    except Exception:  # noqa: BLE001 - litellm raises for models missing from its map
        return False


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
