"""OpenAI-compatible routes: chat completions (plain and SSE), models, health and metrics."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from router.accounting import Outcome, RoutedRequest, StreamStarted
from router.api.errors import validation_error
from router.api.exposure import public_health
from router.api.schemas import ChatCompletionRequest, chunk_body, completion_body
from router.core import CompletionRequest, TextDelta
from router.core.capabilities import request_needs
from router.core.errors import FrugalError, InvalidRequestError, PayloadTooLargeError, RequestTimeoutError
from router.limits import Lease
from router.models import model_names, resolve_model


class PlainRoute(APIRoute):
    """A route whose endpoint takes the ``Request`` and returns a ``Response`` itself.

    FastAPI still documents it (OpenAPI schema, ``openapi_extra``) but calls the endpoint directly, without
    solving dependencies or serialising a return value for it: the chat route reads and answers its body
    itself, and this is its hot path (docs/BENCHMARKS.md).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The endpoint itself."""
        return self.endpoint  # type: ignore[return-value]


router = APIRouter()

_CHAT_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": ChatCompletionRequest.model_json_schema(
            ref_template="#/components/schemas/{model}")}},
    }
}


_CHAT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The completion (JSON), or server-sent events when `stream` is true",
          "content": {"application/json": {}, "text/event-stream": {}}},
}


async def read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """Read the request body: 408 (connection closed) after ``timeout_s``, 413 past ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"request body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLargeError(f"request body exceeds the limit of {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeoutError(f"the request body did not arrive within {timeout_s:g} s "
                                  f"({size} bytes received); send it at once") from None
    except ClientDisconnect:  # nobody will read the answer; as FastAPI does for the bodies it parses
        raise InvalidRequestError("the client closed the connection before sending the whole body") from None
    return b"".join(chunks)


def parse_chat_request(body: bytes, services: Any) -> ChatCompletionRequest:
    """Parse and check a chat request: 400 for malformed or unsupported input, 422 for wrong shapes."""
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(f"the request body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise InvalidRequestError("the request body nests JSON too deeply") from exc
    except ValueError as exc:  # e.g. an integer literal beyond Python's digit limit
        raise InvalidRequestError(f"the request body cannot be read as JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise InvalidRequestError("the request body must be a JSON object")
    try:
        chat = ChatCompletionRequest.from_payload(payload)
    except ValidationError as exc:
        raise validation_error(exc) from exc
    limits = services.settings.limits
    if chat.n is not None and chat.n > 1:
        raise InvalidRequestError("n > 1 is not supported: Frugal returns one choice per request", param="n")
    if not chat.messages:
        raise InvalidRequestError("messages must contain at least one message", param="messages")
    if len(chat.messages) > limits.max_messages:
        raise InvalidRequestError(f"too many messages ({len(chat.messages)} > {limits.max_messages})",
                                  param="messages")
    wanted = chat.wanted_tokens()
    if wanted is not None and wanted > limits.max_tokens_cap:
        param = "max_completion_tokens" if chat.max_completion_tokens else "max_tokens"
        raise InvalidRequestError(f"{param} {wanted} exceeds the limit of {limits.max_tokens_cap}", param=param)
    return chat


def _require_unicode(text: str, param: str) -> None:
    """400 for text that is not valid Unicode: JSON may escape a lone UTF-16 surrogate (``"\\ud800"``), UTF-8 may not."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRequestError(
            f"{param} holds an unpaired UTF-16 surrogate ({text[exc.start]!r} at position {exc.start}): "
            "it is not valid Unicode; send the character as a surrogate pair or drop it", param=param) from exc


def routed_request(chat: ChatCompletionRequest, services: Any, client_key_id: str | None) -> RoutedRequest:
    """Resolve the model and flatten the conversation into a pipeline request."""
    _canonical, forced = resolve_model(chat.model, services.settings.aliases)
    messages = chat.flat_messages()
    limit = services.settings.limits.max_message_chars
    for index, message in enumerate(messages):
        if len(message.content) > limit:
            raise InvalidRequestError(f"messages[{index}] has {len(message.content)} characters; the limit is {limit}",
                                      param=f"messages.{index}.content")
        _require_unicode(message.content, f"messages.{index}.content")
    for index, stop in enumerate(chat.stop_list()):
        _require_unicode(stop, f"stop.{index}")
    if chat.user is not None:
        _require_unicode(chat.user, "user")
    if not any(m.role == "user" and (m.content.strip() or raw.has_media())
               for m, raw in zip(messages, chat.messages, strict=True)):
        raise InvalidRequestError("the conversation needs at least one non-empty user message", param="messages")
    request = CompletionRequest(
        messages=messages, max_tokens=chat.wanted_tokens(), temperature=chat.temperature, top_p=chat.top_p,
        stop=chat.stop_list(), seed=chat.seed, user=chat.user, raw_messages=chat.raw_messages(),
        params=chat.passthrough(), needs=request_needs(chat.raw_payload()),
        max_tokens_param="max_completion_tokens" if chat.max_completion_tokens else "max_tokens",
    )
    request_id = f"chatcmpl-{uuid.uuid4().hex}"
    request.request_id = request_id
    return RoutedRequest(request_id=request_id, requested_model=chat.model, forced_tier=forced,
                         completion_request=request, client_key_id=client_key_id)


async def chat_completions(request: Request) -> Response:
    """Answer a chat completion with the cheapest sufficient tier."""
    services = request.app.state.services
    client_key_id = services.keys.client(request)
    limits = services.settings.limits
    body = await read_body(request, limits.max_body_bytes, limits.body_timeout_s)  # a slow body holds no slot
    lease = await services.limits.admit() if services.limits is not None else None
    try:
        return await _chat(body, services, client_key_id, lease)
    finally:
        if lease is not None:
            lease.release()  # a no-op for a stream: its response took the slot over (``Lease.transfer``)


router.add_api_route("/v1/chat/completions", chat_completions, methods=["POST"], route_class_override=PlainRoute,
                     openapi_extra=_CHAT_SCHEMA, response_model=None, responses=_CHAT_RESPONSES)


async def _chat(body: bytes, services: Any, client_key_id: str | None, lease: Lease | None) -> Response:
    chat = parse_chat_request(body, services)
    routed = routed_request(chat, services, client_key_id)
    if chat.stream:
        include_usage = bool(chat.stream_options and chat.stream_options.include_usage)
        return await _stream_response(services, routed, chat.model, include_usage, lease)
    outcome = await services.dispatcher.answer(routed)
    body_json = completion_body(
        request_id=outcome.request_id, created=outcome.created, model=chat.model, text=outcome.completion.text,
        finish_reason=outcome.completion.finish_reason, usage=outcome.usage(), frugal=outcome.frugal_object(),
        message_fields=outcome.completion.message_fields, logprobs=outcome.completion.logprobs,
    )
    return JSONResponse(body_json, headers=outcome.headers())


class _LeasedStream(StreamingResponse):
    """A stream that keeps its server-wide slot until the last byte is sent (or the client goes away).

    The slot is given back as the last body message is sent, in the same step: a client that has read the whole
    stream and sends its next request at once finds it free (Starlette's teardown of the stream comes later).
    """

    lease: Lease | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def send_then_release(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False) and self.lease:
                self.lease.release()

        try:
            await super().__call__(scope, receive, send_then_release)
        finally:
            if self.lease is not None:
                self.lease.release()


async def _stream_response(
    services: Any, routed: RoutedRequest, model: str, include_usage: bool, lease: Lease | None = None
) -> Response:
    events = services.dispatcher.events(routed, live=True)
    first = await anext(events)  # errors before any text are plain HTTP errors
    if not isinstance(first, StreamStarted):  # pragma: no cover - the dispatcher always starts with it
        raise FrugalError("stream did not start")
    response = _LeasedStream(
        _sse(events, routed.request_id, model, include_usage), media_type="text/event-stream",
        headers={**first.headers, "cache-control": "no-cache"},
    )
    if lease is not None:
        response.lease = lease.transfer()
    return response


def _sse_line(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


async def _sse(events: AsyncIterator[Any], request_id: str, model: str, include_usage: bool) -> AsyncIterator[bytes]:
    import time

    created = int(time.time())
    yield _sse_line(chunk_body(request_id=request_id, created=created, model=model,
                               delta={"role": "assistant", "content": ""}, finish_reason=None))
    try:
        async for event in events:
            if isinstance(event, TextDelta):
                delta = {"content": event.text} if event.text or not event.fields else {}
                yield _sse_line(chunk_body(request_id=request_id, created=created, model=model,
                                           delta={**delta, **(event.fields or {})}, finish_reason=None,
                                           logprobs=event.logprobs))
            elif isinstance(event, Outcome):
                frugal = event.frugal_object()
                yield _sse_line(chunk_body(
                    request_id=request_id, created=created, model=model, delta={},
                    finish_reason=event.completion.finish_reason, frugal=None if include_usage else frugal))
                if include_usage:
                    yield _sse_line(chunk_body(request_id=request_id, created=created, model=model, delta={},
                                               finish_reason=None, usage=event.usage(), frugal=frugal,
                                               empty_choices=True))
    except FrugalError as exc:
        yield _sse_line(exc.to_openai())
    yield _sse_line("[DONE]")


@router.get("/v1/models")
async def list_models(request: Request) -> dict[str, Any]:
    """The model names this router accepts, in OpenAI's list format."""
    services = request.app.state.services
    services.keys.client(request)
    return {
        "object": "list",
        "data": [{"id": name, "object": "model", "created": 0, "owned_by": "frugal"}
                 for name in model_names(services.settings.aliases)],
    }


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    """Which tiers can answer now; 503 when none can, or while a tier is still loading (``warming``).

    Details (paths, URLs, error texts) only for a caller the admin API would let in; others see states and names.
    """
    services = request.app.state.services
    report = await services.health()
    if not services.keys.is_admin(request):
        report = public_health(report)
    return JSONResponse(report, status_code=503 if report["status"] in ("down", "warming") else 200)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> Response:
    """Prometheus metrics."""
    body, content_type = request.app.state.services.metrics.render()
    return Response(body, media_type=content_type)
