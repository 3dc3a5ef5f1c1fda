"""The one place where errors become OpenAI-style JSON responses.

Frugal's own errors carry their status; FastAPI/Starlette's validation and HTTP errors are re-shaped
into the same ``{"error": {...}}`` body; anything unexpected is logged and answered as a 500 in the same
shape (bad input must never get here: that would be a bug).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from router.core.errors import FrugalError, UnprocessableError

log = logging.getLogger(__name__)

#: The OpenAI endpoints Frugal answers (named in every 404 and 405).
SUPPORTED_ENDPOINTS = ("POST /v1/chat/completions", "GET /v1/models")

_HTTP_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error",
               429: "rate_limit_error"}


def error_response(exc: FrugalError, headers: dict[str, str] | None = None) -> JSONResponse:
    """Render a Frugal error as OpenAI's error JSON with its status code."""
    extra = dict(headers or {})
    if exc.close_connection:
        extra["connection"] = "close"
    if exc.retry_after is not None:
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


ERROR_SCHEMA: dict[str, Any] = {
    "title": "ErrorResponse",
    "type": "object",
    "required": ["error"],
    "properties": {"error": {
        "type": "object",
        "required": ["message", "type", "param", "code"],
        "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                       "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}},
    }},
}
_ERROR_RESPONSE = {"description": "An error in OpenAI's format (4xx: the request; 429 carries Retry-After; 5xx: "
                                  "a tier or the ledger)",
                   "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}


def _hoist_defs(node: Any, components: dict[str, Any]) -> None:
    """Move nested ``$defs`` (a hand-written request schema's) into ``components/schemas``, where its refs point."""
    if isinstance(node, dict):
        for name, definition in node.pop("$defs", {}).items():
            components.setdefault(name, definition)
            _hoist_defs(definition, components)
        for value in node.values():
            _hoist_defs(value, components)
    elif isinstance(node, list):
        for value in node:
            _hoist_defs(value, components)


def document_errors(app: FastAPI) -> None:
    """Make the OpenAPI schema say what errors look like (``ErrorResponse`` for 422 and every other error)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        _hoist_defs(schema.get("paths", {}), components)
        components["ErrorResponse"] = ERROR_SCHEMA
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                if "422" in responses:
                    responses["422"] = {**_ERROR_RESPONSE, "description": "The request failed validation"}
                responses.setdefault("default", _ERROR_RESPONSE)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the OpenAI shape (and document it in the OpenAPI schema)."""
    document_errors(app)

    @app.exception_handler(FrugalError)
    async def _frugal(_: Request, exc: FrugalError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message, code = str(exc.detail), None
        if exc.status_code in (404, 405):
            message = (f"{request.method} {request.url.path}: {'no such endpoint' if exc.status_code == 404 else 'method not allowed'}. "
                       f"Frugal serves the OpenAI endpoints {', '.join(SUPPORTED_ENDPOINTS)} (docs/API.md lists the "
                       "others and why they are not served)")
            code = "unknown_url" if exc.status_code == 404 else "method_not_allowed"
        body = {"error": {"message": message, "type": _HTTP_TYPES.get(exc.status_code, "api_error"),
                          "param": None, "code": code}}
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        body = {"error": {"message": "internal error; see the server log", "type": "api_error", "param": None,
                          "code": "internal_error"}}
        return JSONResponse(body, status_code=500)
