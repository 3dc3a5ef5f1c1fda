"""How a served tier's failures map onto ``router.core.errors`` (after the last fallback failed):

    litellm exception                                   Frugal error
    ContextWindowExceededError                          ContextLengthError     400
    Timeout                                             BackendTimeoutError    504
    RateLimitError                                      RateLimitError         429 (retry_after from Retry-After)
    AuthenticationError, PermissionDeniedError          UpstreamError          502 naming api_key_env
    NotFoundError, BadRequestError, UnprocessableEntity UpstreamError          502 naming model/api_base/options
    APIConnectionError, ServiceUnavailable, BadGateway  TierUnavailableError   503 (cannot reach the tier;
    or any error caused by a refused connection)                             litellm reports these as 500s)
    InternalServerError, malformed answers, the rest    UpstreamError          502 (it answered, wrongly)
"""

from __future__ import annotations

from backends.litellm_setup import Target, litellm_kind, retry_after_of
from backends.openai_fast import UpstreamStatus, classify
from router.core.errors import (
    BackendTimeoutError,
    ContextLengthError,
    FrugalError,
    RateLimitError,
    TierUnavailableError,
    UpstreamError,
)


def map_failure(exc: Exception, detail: str, *, tier: str, target: Target, timeout_s: float) -> FrugalError:
    """The Frugal error for a provider failure whose scrubbed message is ``detail`` (see the module docstring)."""
    where = f"{tier} tier model {target.model}" + (f" at {target.api_base}" if target.api_base else "")
    setting = f"{tier}.api_key_env ({target.api_key_env})" if target.api_key_env else "the provider's API key env var"
    kind = classify(exc) or litellm_kind(exc, detail)
    if kind == "context":
        return ContextLengthError(f"the prompt does not fit the context window of {target.model}: {detail}",
                                  param="messages")
    if kind == "timeout":
        return BackendTimeoutError(f"{where} did not answer within {timeout_s:g}s ({tier}.timeout_s)")
    if kind == "rate_limit":
        retry = exc.retry_after if isinstance(exc, UpstreamStatus) else retry_after_of(exc)
        return RateLimitError(f"{where} is rate limited: {detail}", retry_after=retry)
    if kind == "auth":
        return UpstreamError(f"{where} rejected the API key; check {setting}: {detail}",
                             param=f"{tier}.api_key_env")
    if kind == "not_found":
        return UpstreamError(f"{where} was not found; check {tier}.model and {tier}.api_base: {detail}",
                             param=f"{tier}.model")
    if kind == "bad_request":
        return UpstreamError(f"{where} refused the request; check {tier}.model, {tier}.api_base and "
                             f"{tier}.options: {detail}", param=f"{tier}.model")
    if kind == "unreachable":
        return TierUnavailableError(f"cannot reach the {where}; check that it runs and {tier}.api_base: {detail}")
    if kind == "malformed":
        return UpstreamError(f"{where} sent a malformed answer: {detail}")
    if kind == "server_error":
        return UpstreamError(f"{where} failed with a server error: {detail}")
    return UpstreamError(f"{where} answered with an error or an unreadable reply: {detail}")
