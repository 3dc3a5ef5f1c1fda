"""How ``frugal serve`` runs the app: uvicorn's h11 protocol, with a deadline on reading each request.

uvicorn closes a keep-alive connection that stays idle (``timeout_keep_alive``), but any byte received
cancels that timer, and nothing else times a request: a client that sends half a request line, or headers
and then a body one byte at a time, keeps its connection (a socket, a file descriptor, for a body an app
task) for as long as it likes. ``DeadlineProtocol`` arms one timer per request from h11's view of the
client: the head must be complete ``limits.header_timeout_s`` after the connection opened (or, on a kept-alive
connection, after the request's first byte: idle time between requests stays ``timeout_keep_alive``'s), the
body ``limits.body_timeout_s`` after its head; data arriving does not extend either. When the timer fires,
the connection is closed.

The chat route reads its body under the same deadline and answers 408 in OpenAI's format itself
(``router.api.routes.read_body``), so the server's body deadline is a backstop ``BODY_GRACE_S`` later: it
closes what no route is reading (a 404 or 401 answered before its body arrived, a body FastAPI is parsing).

Cost: one comparison of h11's state per received chunk and one timer per request (``call_later``, a heap
push), below the noise of a request's own work; measured in docs/RELIABILITY.md.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

BODY_GRACE_S = 1.0


class ServerConfig(uvicorn.Config):
    """uvicorn's ``Config`` for the app, carrying the request deadlines its ``DeadlineProtocol`` enforces."""

    def __init__(self, app: Any, *, header_timeout_s: float, body_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(app, http=DeadlineProtocol, **kwargs)
        self.header_timeout_s = header_timeout_s
        self.body_timeout_s = body_timeout_s


class DeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol that closes a connection whose request head or body does not arrive in time."""

    def __init__(self, config: ServerConfig, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._head_s = config.header_timeout_s
        self._body_s = config.body_timeout_s + BODY_GRACE_S
        self._deadline: asyncio.TimerHandle | None = None
        self._timed: object = None  # the client's h11 state when the deadline was set; None: nothing is timed

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._time(h11.IDLE)  # a connection that sends nothing is closed too (uvicorn would keep it)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not self._timed:
            self._time(self.conn.their_state)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        state = self.conn.their_state
        if state is h11.IDLE:  # idle keep-alive is uvicorn's; the next head is timed from its first byte
            self._disarm()
            self._timed = None
        elif state is not self._timed:  # a pipelined request is already under way
            self._time(state)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _time(self, state: object) -> None:
        """Time the part of the request the client owes now: its head (IDLE), its body (SEND_BODY), or nothing."""
        self._disarm()
        self._timed = state
        if state is h11.IDLE:
            self._deadline = self.loop.call_later(self._head_s, self._expire)
        elif state is h11.SEND_BODY:
            self._deadline = self.loop.call_later(self._body_s, self._expire)

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
