"""The one exception tree of Frugal, and its mapping to OpenAI's error format.

Every failure a client can see is one of these; modules translate foreign exceptions at their
boundary with ``raise FrugalError(...) from exc``. The HTTP layer turns them into
``{"error": {"message", "type", "param", "code"}}`` in exactly one place (``router.api.errors``).

    FrugalError                      500 api_error (never raised for bad input)
    ├── InvalidRequestError          400 invalid_request_error
    │   ├── ContextLengthError       400 invalid_request_error / context_length_exceeded
    │   └── CapabilityError          400 invalid_request_error / capability_not_supported (no tier honours it)
    ├── AuthenticationError          401 authentication_error
    ├── PermissionDeniedError        403 permission_error
    ├── NotFoundError                404 not_found_error
    │   └── ModelNotFoundError       404 invalid_request_error / model_not_found
    ├── RequestTimeoutError          408 invalid_request_error / request_timeout (body too slow; closes)
    ├── PayloadTooLargeError         413 invalid_request_error / payload_too_large
    ├── UnprocessableError           422 invalid_request_error (validation: schema, thresholds)
    ├── RateLimitError               429 rate_limit_error (carries retry_after seconds)
    │   └── TierSaturatedError       429 rate_limit_error / tier_saturated (Frugal's own limiter)
    ├── UpstreamError                502 upstream_error (provider auth/config/bad answer)
    ├── TierUnavailableError         503 service_unavailable (tier not configured or down)
    │   ├── TierWarmingError         503 service_unavailable / tier_warming (still loading; carries retry_after)
    │   └── CapableTierUnavailableError  503 service_unavailable / capable_tier_unavailable (the tiers that
    │                                    honour what the request needs are down)
    ├── LedgerUnavailableError       503 service_unavailable (the ledger cannot record)
    │   └── LedgerCorruptError       503 service_unavailable / ledger_corrupt (the database file is damaged)
    └── BackendTimeoutError          504 timeout (a backend took longer than its timeout)
"""

from __future__ import annotations


class FrugalError(Exception):
    """Base of every error Frugal reports; carries its HTTP status and OpenAI error fields."""

    status_code: int = 500
    error_type: str = "api_error"
    default_code: str | None = None
    retry_after: float | None = None  # seconds, sent as ``Retry-After`` where a retry will likely succeed
    close_connection: bool = False  # the answer also closes the connection (the request was not read in full)

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code

    def to_openai(self) -> dict[str, object]:
        """The error as OpenAI's ``{"error": {...}}`` body."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequestError(FrugalError):
    """The request is malformed or asks for something unsupported."""

    status_code = 400
    error_type = "invalid_request_error"


class ContextLengthError(InvalidRequestError):
    """The prompt does not fit the model's context window."""

    default_code = "context_length_exceeded"


class CapabilityError(InvalidRequestError):
    """No configured tier honours what the request needs (tools, a JSON format …); the message says how to enable it."""

    default_code = "capability_not_supported"


class AuthenticationError(FrugalError):
    """A key is missing or wrong."""

    status_code = 401
    error_type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDeniedError(FrugalError):
    """The key is valid but may not do this."""

    status_code = 403
    error_type = "permission_error"


class NotFoundError(FrugalError):
    """The addressed resource does not exist."""

    status_code = 404
    error_type = "not_found_error"


class ModelNotFoundError(NotFoundError):
    """The requested model name is neither a Frugal model nor a configured alias."""

    error_type = "invalid_request_error"
    default_code = "model_not_found"


class RequestTimeoutError(FrugalError):
    """The request body did not arrive within ``limits.body_timeout_s``; the connection is closed after the answer."""

    status_code = 408
    error_type = "invalid_request_error"
    default_code = "request_timeout"
    close_connection = True


class PayloadTooLargeError(FrugalError):
    """The request body is larger than the configured limit."""

    status_code = 413
    error_type = "invalid_request_error"
    default_code = "payload_too_large"


class UnprocessableError(FrugalError):
    """The request is well-formed JSON but fails validation."""

    status_code = 422
    error_type = "invalid_request_error"
    default_code = "validation_error"


class RateLimitError(FrugalError):
    """Too many requests for a tier or provider; retry later."""

    status_code = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: str | None) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class TierSaturatedError(RateLimitError):
    """A tier has ``max_concurrency`` requests in flight and its wait queue is full or too slow."""

    default_code = "tier_saturated"


class UpstreamError(FrugalError):
    """A provider refused or answered nonsense (bad key, bad config, malformed reply)."""

    status_code = 502
    error_type = "upstream_error"
    default_code = "bad_gateway"


class TierUnavailableError(FrugalError):
    """The tier needed for this request is not configured or not reachable."""

    status_code = 503
    error_type = "service_unavailable"
    default_code = "tier_unavailable"


class TierWarmingError(TierUnavailableError):
    """The tier this request needs is still loading at start-up; a retry in a few seconds will be answered."""

    default_code = "tier_warming"

    def __init__(self, message: str, *, retry_after: float = 5.0, **kwargs: str | None) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class CapableTierUnavailableError(TierUnavailableError):
    """The tiers that honour what the request needs are configured but down right now."""

    default_code = "capable_tier_unavailable"


class LedgerUnavailableError(FrugalError):
    """The ledger cannot record the request, so it is not answered."""

    status_code = 503
    error_type = "service_unavailable"
    default_code = "ledger_unavailable"


class LedgerCorruptError(LedgerUnavailableError):
    """The ledger database is damaged (not a transient outage): it needs an operator, see docs/RELIABILITY.md."""

    default_code = "ledger_corrupt"


class BackendTimeoutError(FrugalError):
    """A backend did not answer within its timeout."""

    status_code = 504
    error_type = "timeout"
    default_code = "backend_timeout"
