"""A low-overhead HTTP/1.1 load client for benchmarks: raw asyncio streams, keep-alive, requests encoded once.

The load generator shares the machine's two cores with the servers it measures, so its own CPU per request
must be small next to theirs: an httpx client spends hundreds of microseconds per request, this one a few tens
(no request objects, no header models; a response is read as its status line, headers and body). For a
server-sent-events stream it notes when the first chunk carrying answer text arrives (the first ``data:``
event whose ``choices[0].delta.content`` is not empty), which is the time to first byte a user sees.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def post_request(path: str, body: Mapping[str, Any], port: int) -> bytes:
    """One keep-alive HTTP/1.1 JSON POST, encoded once and sent as is for every request."""
    payload = json.dumps(body).encode()
    head = (f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(payload)}\r\n\r\n").encode()
    return head + payload


@dataclass
class Reply:
    """One response: status, lower-cased headers, body, and for a stream when its first answer text came."""

    status: int
    headers: dict[str, str]
    body: bytes
    first_content: float | None = None  # time.perf_counter() at the chunk holding the first answer text


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """Status code and lower-cased headers of the next response on ``reader``."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers


def first_content_in(events: bytes) -> bool:
    """Whether complete SSE events in ``events`` include one with non-empty answer text."""
    for event in events.split(b"\n\n"):
        data = event.strip()
        if not data.startswith(b"data:") or data.endswith(b"[DONE]"):
            continue
        try:
            choices = json.loads(data[5:]).get("choices") or []
        except ValueError:
            continue
        if choices and (choices[0].get("delta") or {}).get("content"):
            return True
    return False


async def read_reply(reader: asyncio.StreamReader, *, stream: bool = False) -> Reply:
    """Read one whole response (a length or chunked body); with ``stream``, time its first answer text."""
    status, headers = await read_head(reader)
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
        reply = Reply(status, headers, body)
        if stream and first_content_in(body):
            reply.first_content = time.perf_counter()
        return reply
    if headers.get("transfer-encoding", "").lower() != "chunked":
        raise ValueError(f"a response with neither a length nor chunked encoding: {headers}")
    parts: list[bytes] = []
    pending = b""  # SSE text not yet seen to hold answer text, up to its last complete event
    found: float | None = None
    while True:
        size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
        chunk = (await reader.readexactly(size + 2))[:-2]
        if size == 0:
            return Reply(status, headers, b"".join(parts), found)
        parts.append(chunk)
        if stream and found is None:
            pending += chunk
            complete, sep, rest = pending.rpartition(b"\n\n")
            if sep:
                if first_content_in(complete):
                    found = time.perf_counter()
                pending = rest


@dataclass
class Sample:
    """One timed request: latency in ms, the first answer text in ms (streams), and whether it succeeded."""

    ms: float
    first_ms: float | None
    ok: bool


async def closed_loop(port: int, payload: bytes, *, stream: bool, ok: bytes, samples: list[Sample],
                      stop: asyncio.Event | None = None, requests: int | None = None, warmup: int = 2,
                      ready: asyncio.Barrier | None = None) -> int:
    """One client on one keep-alive connection: send ``payload``, read the reply, repeat.

    Sends ``warmup`` untimed requests, waits at ``ready`` (so that many clients start together), then times
    requests until ``stop`` is set or ``requests`` have been sent. A reply succeeds when it is a 200 whose body
    holds ``ok`` (and, for a stream, answer text); anything else, a dropped connection included, is recorded as
    a failure and the connection is reopened. Returns how many 200 replies it received, warm-up included.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answered = 0
    try:
        for _ in range(warmup):
            writer.write(payload)
            answered += (await read_reply(reader, stream=stream)).status == 200
        if ready is not None:
            await ready.wait()
        sent = 0
        while (requests is None or sent < requests) and not (stop is not None and stop.is_set()):
            sent += 1
            started = time.perf_counter()
            try:
                writer.write(payload)
                reply = await read_reply(reader, stream=stream)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                samples.append(Sample((time.perf_counter() - started) * 1000, None, False))
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            ended = time.perf_counter()
            answered += reply.status == 200
            good = reply.status == 200 and ok in reply.body and (not stream or reply.first_content is not None)
            first = (reply.first_content - started) * 1000 if reply.first_content is not None else None
            samples.append(Sample((ended - started) * 1000, first, good))
            if reply.headers.get("connection", "").lower() == "close":
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()
    return answered
