"""How ``frugal serve`` runs the app: uvicorn's httptools protocol on uvloop, with a deadline on reading each request.

uvicorn closes a keep-alive connection that stays idle (``timeout_keep_alive``), but any byte received
cancels that timer, and nothing else times a request: a client that sends half a request line, or headers
and then a body one byte at a time, keeps its connection (a socket, a file descriptor, for a body an app
task) for as long as it likes. ``DeadlineProtocol`` arms one timer per request from the parser's view of the
client: the head must be complete ``limits.header_timeout_s`` after the connection opened (or, on a kept-alive
connection, after the request's first byte: idle time between requests stays ``timeout_keep_alive``'s), the
body ``limits.body_timeout_s`` after its head; data arriving does not extend either. When the timer fires,
the connection is closed.

The chat route reads its body under the same deadline and answers 408 in OpenAI's format itself
(``router.api.routes.read_body``), so the server's body deadline is a backstop ``BODY_GRACE_S`` later: it
closes what no route is reading (a 404 or 401 answered before its body arrived, a body FastAPI is parsing).

Why httptools and uvloop rather than uvicorn's pure-Python h11 and asyncio's loop: llhttp parses in C and
uvloop's loop is libuv; together they took 13-50 % more forced-search requests per second at 16 connections
on the same code (docs/BENCHMARKS.md). Cost of the deadline: one timer per request (``call_later``, a heap
push) and three parser callbacks, below the noise of a request's own work.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

BODY_GRACE_S = 1.0


class ServerConfig(uvicorn.Config):
    """uvicorn's ``Config`` for the app, carrying the request deadlines its ``DeadlineProtocol`` enforces."""

    def __init__(self, app: Any, *, header_timeout_s: float, body_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(app, http=DeadlineProtocol, loop="uvloop", **kwargs)
        self.header_timeout_s = header_timeout_s
        self.body_timeout_s = body_timeout_s


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that closes a connection whose request head or body does not arrive in time."""

    def __init__(self, config: ServerConfig, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._head_s = config.header_timeout_s
        self._body_s = config.body_timeout_s + BODY_GRACE_S
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self._head_s)  # a connection that sends nothing is closed too (uvicorn would keep it)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # a kept-alive connection's next request: its head is timed from its first byte
            self._arm(self._head_s)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self._body_s)  # disarmed at once by on_message_complete when there is no body

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def server_config(app: Any, settings: Any, **kwargs: Any) -> ServerConfig:
    """The uvicorn configuration that serves ``app`` on ``settings.host:port`` with ``settings.limits``' deadlines
    (and uvicorn's access log only when ``settings.access_log`` asks for it)."""
    limits = settings.limits
    return ServerConfig(app, host=settings.host, port=settings.port, header_timeout_s=limits.header_timeout_s,
                        body_timeout_s=limits.body_timeout_s, access_log=settings.access_log, **kwargs)
