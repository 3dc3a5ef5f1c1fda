"""The litellm tier's fast path: OpenAI-compatible upstreams called directly, with one long-lived client.

litellm's completion wrapper (its logging, cost and provider shims) was 59 % of a forced-large request's
CPU in the issue-23 profile. A target whose provider speaks OpenAI's chat API — ``openai/…`` (OpenAI
itself, or any ``api_base``: llama.cpp's server, Ollama's ``/v1``, LM Studio …) and ``hosted_vllm/…`` —
is posted to directly: one aiohttp ``ClientSession`` per event loop, kept alive and shared with the
health probe, the body built once, the reply read as JSON or as server-sent events. aiohttp rather than
httpx because the client is on the hot path: against the same instant upstream at concurrency 16 it
costs 0.19 ms of CPU per request where httpx costs 1.6 ms (measured 2026-12-06, docs/benchmarks/gateway.md).
Failures are raised as ``UpstreamStatus`` (the server answered an error) or as aiohttp's own errors,
which the backend maps onto the same error tree as litellm's. Other providers, and targets with ``extra_params`` (litellm-specific
by definition), stay on litellm; ``options.fast_path: false`` keeps every target there.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

#: Providers whose chat API is OpenAI's, and their default base URL (None: ``api_base`` is required).
OPENAI_COMPATIBLE: dict[str, str | None] = {"openai": "https://api.openai.com/v1", "hosted_vllm": None}
MAX_CONNECTIONS = 256


class UpstreamStatus(Exception):
    """The upstream answered with an HTTP error: its status, its message, and ``Retry-After`` if it sent one."""

    def __init__(self, status: int, message: str, retry_after: float | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status
        self.message = message
        self.retry_after = retry_after
        self.code = code


class MalformedReply(Exception):
    """The upstream answered 200 with something that is not an OpenAI chat completion."""


def fast_route(model: str, api_base: str | None) -> tuple[str, str] | None:
    """(chat completions URL, the model name the upstream expects) for an OpenAI-compatible target, else None."""
    provider, sep, name = model.partition("/")
    if not sep or provider not in OPENAI_COMPATIBLE or not name:
        return None
    base = api_base or OPENAI_COMPATIBLE[provider]
    if base is None:
        return None
    return base.rstrip("/") + "/chat/completions", name


class FastClient:
    """One keep-alive aiohttp session per event loop (a session belongs to the loop that made it)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._session: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def session(self) -> Any:
        """The session of the running loop, made on first use."""
        import aiohttp

        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(connector=connector, json_serialize=_dumps,
                                                  timeout=aiohttp.ClientTimeout(total=self.timeout_s))
            self._loop = loop
        return self._session

    async def probe(self, url: str, timeout_s: float) -> int:
        """GET ``url`` (the health probe); its status, or an aiohttp / timeout error."""
        import aiohttp

        async with self.session().get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            await response.read()
            return int(response.status)

    async def complete(self, url: str, key: str | None, body: dict[str, Any]) -> dict[str, Any]:
        """POST a chat completion; the parsed reply, or ``UpstreamStatus`` / ``MalformedReply`` / aiohttp errors."""
        async with self.session().post(url, json=body, headers=_headers(key)) as response:
            content = await response.read()
            if response.status >= 400:
                raise _status_error(response.status, content, response.headers)
        try:
            reply = json.loads(content)
            reply["choices"][0]["message"]  # the shape is checked here, once
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise MalformedReply(f"not an OpenAI chat completion: {content[:200]!r}") from exc
        return reply  # type: ignore[no-any-return]

    async def stream(self, url: str, key: str | None, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """POST a streaming chat completion; yield each ``data:`` chunk as parsed JSON until ``[DONE]``."""
        async with self.session().post(url, json=body, headers=_headers(key)) as response:
            if response.status >= 400:
                raise _status_error(response.status, await response.read(), response.headers)
            async for raw in response.content:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                try:
                    chunk = json.loads(data)
                except ValueError as exc:
                    raise MalformedReply(f"unreadable stream chunk: {data[:200]!r}") from exc
                if not isinstance(chunk, dict):
                    raise MalformedReply(f"unreadable stream chunk: {data[:200]!r}")
                if "error" in chunk and not chunk.get("choices"):
                    error = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
                    raise UpstreamStatus(500, str(error.get("message", error)), code=error.get("code"))
                yield chunk

    async def aclose(self) -> None:
        """Close the session."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _headers(key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"} if key else {}


def _status_error(status: int, content: bytes, headers: Any) -> UpstreamStatus:
    """An ``UpstreamStatus`` from an error reply, reading OpenAI's ``{"error": {...}}`` when it is one."""
    message, code = content.decode("utf-8", "replace")[:400], None
    try:
        error = json.loads(content).get("error")
        if isinstance(error, dict):
            message, code = str(error.get("message") or message), error.get("code")
        elif isinstance(error, str):
            message = error
    except (ValueError, AttributeError):
        pass
    retry_after = None
    value = headers.get("retry-after")
    if value:
        try:
            retry_after = float(value)
        except ValueError:
            retry_after = None
    return UpstreamStatus(status, message, retry_after, code if isinstance(code, str) else None)


def is_context_overflow(error: UpstreamStatus) -> bool:
    """Whether a 400 says the prompt does not fit the model's context window."""
    text = f"{error.code or ''} {error.message}".lower()
    return error.status_code == 400 and ("context_length" in text or "context window" in text
                                         or "maximum context" in text or "context length" in text)


def classify(exc: BaseException) -> str | None:
    """The kind of a fast-path failure, as ``LiteLLMBackend.map_error`` names them; None if it is not one."""
    import aiohttp

    if isinstance(exc, UpstreamStatus):
        if is_context_overflow(exc):
            return "context"
        return {429: "rate_limit", 401: "auth", 403: "auth", 404: "not_found", 400: "bad_request",
                422: "bad_request", 502: "unreachable", 503: "unreachable", 504: "timeout"}.get(
                    exc.status_code, "server_error")
    if isinstance(exc, MalformedReply):
        return "malformed"
    if isinstance(exc, (aiohttp.ServerTimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(exc, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, ConnectionError)):
        return "unreachable"
    return None


def retryable(exc: BaseException) -> bool:
    """Whether ``options.num_retries`` applies: the upstream was busy, failed, or could not be reached."""
    return classify(exc) in ("rate_limit", "unreachable", "server_error", "timeout")


def chunk_field(item: Any, name: str) -> Any:
    """A field of a stream chunk, whether it is the fast path's dict or litellm's object."""
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


def usage_of(reply: dict[str, Any]) -> Any:
    """A reply's usage block as attributes (what ``_tokens`` reads), or None."""
    usage = reply.get("usage")
    if isinstance(usage, dict):
        return SimpleNamespace(**usage)
    return usage


#: Message and delta fields Frugal reads itself; every other field of an upstream answer is passed on unchanged.
_READ_FIELDS = frozenset({"role", "content", "provider_specific_fields"})  # the last: litellm's own


def extra_fields(message: Any) -> dict[str, Any]:
    """An upstream message's or delta's fields other than role and content (tool calls, refusal …), non-null."""
    if not isinstance(message, dict):
        return {}
    return {name: value for name, value in message.items() if name not in _READ_FIELDS and value not in (None, [], {})}


def as_dict(value: Any) -> Any:
    """A litellm response object as plain JSON data (dicts pass through)."""
    if value is None or isinstance(value, dict):
        return value
    for method in ("model_dump", "dict", "to_dict"):
        if hasattr(value, method):
            try:
                return getattr(value, method)()
            except Exception:  # noqa: BLE001, S112 - try the next way of reading the object
                continue
    return value


def usage_details(usage: Any) -> dict[str, Any]:
    """An upstream usage block's fields beyond the three token counts (cached and reasoning token details …)."""
    block = as_dict(usage)
    if not isinstance(block, dict):
        return {}
    return {name: value for name, value in block.items()
            if name not in ("prompt_tokens", "completion_tokens", "total_tokens") and value not in (None, {}, [])}
