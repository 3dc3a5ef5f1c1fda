"""The one place where errors become OpenAI-style JSON responses.

Frugal's own errors carry their status; FastAPI/Starlette's validation and HTTP errors are re-shaped
into the same ``{"error": {...}}`` body; anything unexpected is logged and answered as a 500 in the same
shape (bad input must never get here: that would be a bug).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from router.errors import FrugalError, RateLimitError, UnprocessableError

log = logging.getLogger(__name__)

_HTTP_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error",
               429: "rate_limit_error"}


def error_response(exc: FrugalError, headers: dict[str, str] | None = None) -> JSONResponse:
    """Render a Frugal error as OpenAI's error JSON with its status code."""
    extra = dict(headers or {})
    if isinstance(exc, RateLimitError) and exc.retry_after is not None:
        extra["retry-after"] = str(max(1, round(exc.retry_after)))
    return JSONResponse(exc.to_openai(), status_code=exc.status_code, headers=extra)


def validation_error(exc: ValidationError | RequestValidationError) -> UnprocessableError:
    """Turn a pydantic validation failure into a 422 that names the first offending field."""
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    location = [str(part) for part in first.get("loc", ()) if part not in ("body",)]
    param = ".".join(location) or None
    details = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}" for e in errors[:5]
    )
    return UnprocessableError(f"invalid request: {details}", param=param)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the OpenAI shape."""

    @app.exception_handler(FrugalError)
    async def _frugal(_: Request, exc: FrugalError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        body = {"error": {"message": str(exc.detail), "type": _HTTP_TYPES.get(exc.status_code, "api_error"),
                          "param": None, "code": None}}
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        body = {"error": {"message": "internal error; see the server log", "type": "api_error", "param": None,
                          "code": "internal_error"}}
        return JSONResponse(body, status_code=500)
