"""Limits, each configurable and answered in OpenAI's error format: size, messages, max_tokens, timeouts,
per-tier concurrency with a bounded queue (429 + Retry-After), and the server-wide in-flight cap."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from router.core.errors import RateLimitError, TierSaturatedError
from router.limits import Limiter
from tests.conftest import LiveServer, echo_settings

LIMITS = {"max_body_bytes": 4096, "max_messages": 3, "max_message_chars": 100, "max_tokens_cap": 50}


def user(text: str = "hello there") -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def assert_openai_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if code is not None:
        assert error["code"] == code
    return error


def slow_settings(tmp_path: Path, **overrides: Any) -> Any:
    """Echo tiers whose large tier takes 0.6 s per answer and serves one request at a time."""
    large = {"backend": "echo", "max_concurrency": 1, "options": {"prefix": "large: ", "delay": 0.6}}
    return echo_settings(tmp_path, large=large, **overrides)


async def post_many(url: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        return list(await asyncio.gather(*(client.post("/v1/chat/completions", json=b) for b in bodies)))


def test_request_limits_are_configurable_and_answered_as_openai_errors(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from router.app import create_app

    with TestClient(create_app(echo_settings(tmp_path, limits=LIMITS))) as client:
        big = client.post("/v1/chat/completions", content=b'{"model": "frugal-auto", "pad": "' + b"x" * 5000 + b'"}',
                          headers={"content-type": "application/json"})
        assert_openai_error(big, 413, "payload_too_large")
        many = client.post("/v1/chat/completions", json={"model": "frugal-auto", "messages": user() * 4})
        assert assert_openai_error(many, 400)["param"] == "messages"
        long = client.post("/v1/chat/completions", json={"model": "frugal-auto", "messages": user("y" * 101)})
        assert assert_openai_error(long, 400)["param"] == "messages.0.content"
        tokens = client.post("/v1/chat/completions", json={"model": "frugal-auto", "messages": user(), "max_tokens": 51})
        assert assert_openai_error(tokens, 400)["param"] == "max_tokens"
        ok = client.post("/v1/chat/completions", json={"model": "frugal-auto", "messages": user("y" * 100),
                                                      "max_tokens": 50})
        assert ok.status_code == 200


def test_a_tier_timeout_is_a_504(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from router.app import create_app

    large = {"backend": "echo", "timeout_s": 0.2, "options": {"delay": 2.0}}
    with TestClient(create_app(echo_settings(tmp_path, large=large))) as client:
        response = client.post("/v1/chat/completions", json={"model": "frugal-large", "messages": user()})
    assert assert_openai_error(response, 504, "backend_timeout")["type"] == "timeout"


@pytest.mark.slow
def test_a_saturated_tier_answers_429_with_retry_after_and_the_ledger_records_it(tmp_path: Path) -> None:
    from router.app import create_app

    settings = slow_settings(tmp_path, limits={"tier_queue": 1, "tier_max_wait_s": 2.0})
    app = create_app(settings)
    with LiveServer(app) as server:
        body = {"model": "frugal-large", "messages": user("prove it")}
        responses = asyncio.run(post_many(server.url, [body] * 4))
        metrics = httpx.get(server.url + "/metrics").text
        ledger = app.state.services.ledger
        rows = {row.request_id: row for row in ledger.rows()}
    codes = sorted(r.status_code for r in responses)
    # one runs, one waits its turn (0.6 s < 2 s, slack for a loaded machine), two find the queue full at once
    assert codes == [200, 200, 429, 429], codes
    for refused in (r for r in responses if r.status_code == 429):
        error = assert_openai_error(refused, 429, "tier_saturated")
        assert error["type"] == "rate_limit_error"
        assert int(refused.headers["retry-after"]) >= 1
    assert 'frugal_rejected_total{scope="large"} 2.0' in metrics
    assert sorted(row.status for row in rows.values()) == [200, 200, 429, 429]  # reached the dispatcher: recorded


@pytest.mark.slow
def test_auto_routing_overflows_a_saturated_cheap_tier_or_rejects_when_told(tmp_path: Path) -> None:
    from router.app import create_app

    small = {"backend": "echo", "max_concurrency": 1, "options": {"prefix": "small: ", "delay": 0.6}}
    body = {"model": "frugal-auto", "messages": user("Rewrite this politely: send me the file now.")}
    routes = {}
    for overflow in ("escalate", "reject"):
        settings = echo_settings(tmp_path / overflow, small=small, thresholds={"route.large": 1.0, "route.search": 1.0},
                                 limits={"tier_queue": 0, "overflow": overflow})
        with LiveServer(create_app(settings)) as server:
            responses = asyncio.run(post_many(server.url, [body] * 3))
        routes[overflow] = sorted((r.status_code, r.headers.get("x-frugal-route", "-")) for r in responses)
    assert routes["escalate"] == [(200, "large"), (200, "large"), (200, "small")]
    assert routes["reject"] == [(200, "small"), (429, "-"), (429, "-")]


@pytest.mark.slow
def test_the_server_wide_cap_holds_streams_until_their_last_byte(tmp_path: Path) -> None:
    from router.app import create_app

    # 0.5 s between words: the stream is still being written when the second request arrives. Without it a
    # three-word stream could be sent whole into the socket before that request, and free its slot (flaky).
    large = {"backend": "echo", "max_concurrency": 1, "options": {"prefix": "large: ", "word_delay": 0.5}}
    settings = echo_settings(tmp_path, large=large, limits={"max_in_flight": 1})
    app = create_app(settings)
    stream = {"model": "frugal-large", "messages": user("a b c"), "stream": True}
    plain = {"model": "frugal-small", "messages": user()}

    async def scenario(url: str) -> tuple[list[bytes], httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            async with client.stream("POST", "/v1/chat/completions", json=stream) as response:
                assert response.status_code == 200
                during = await client.post("/v1/chat/completions", json=plain)
                chunks = [chunk async for chunk in response.aiter_bytes()]
            after = await client.post("/v1/chat/completions", json=plain)
        return chunks, during, after

    with LiveServer(app) as server:
        chunks, during, after = asyncio.run(scenario(server.url))
        metrics = httpx.get(server.url + "/metrics").text
        recorded = [row.request_id for row in app.state.services.ledger.rows()]
    assert b"data: [DONE]" in b"".join(chunks)
    error = assert_openai_error(during, 429, "server_busy")
    assert error["type"] == "rate_limit_error" and int(during.headers["retry-after"]) >= 1
    assert after.status_code == 200
    assert 'frugal_rejected_total{scope="server"} 1.0' in metrics
    assert len(recorded) == 2  # refused before any work: counted in metrics, not in the ledger


def test_limiter_hands_slots_over_in_order_and_never_leaks_them() -> None:
    async def scenario() -> None:
        limiter = Limiter("small", 1, max_queue=2, max_wait_s=0.3)
        order: list[int] = []

        async def hold(i: int, seconds: float) -> None:
            async with limiter.slot():
                order.append(i)
                await asyncio.sleep(seconds)

        first = asyncio.create_task(hold(1, 0.1))
        await asyncio.sleep(0)
        second, third = asyncio.create_task(hold(2, 0.1)), asyncio.create_task(hold(3, 0.01))
        await asyncio.sleep(0)
        with pytest.raises(TierSaturatedError) as refused:  # queue of 2 is full
            await limiter.acquire()
        assert refused.value.retry_after is not None and refused.value.retry_after >= 1
        await asyncio.gather(first, second, third)
        assert order == [1, 2, 3] and limiter.in_flight == 0 and limiter.waiting == 0

        blocker = asyncio.create_task(hold(4, 1.0))
        await asyncio.sleep(0)
        waiter = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0.05)
        waiter.cancel()  # a client that goes away while queued gives its place up
        with pytest.raises(asyncio.CancelledError):
            await waiter
        with pytest.raises(TierSaturatedError):  # times out after max_wait_s
            await limiter.acquire()
        await blocker
        assert limiter.in_flight == 0 and limiter.waiting == 0
        server = Limiter("server", 1)
        await server.acquire()
        with pytest.raises(RateLimitError) as busy:
            await server.acquire()
        assert busy.value.code == "server_busy" and not isinstance(busy.value, TierSaturatedError)

    asyncio.run(scenario())


def test_a_tier_queues_what_it_can_serve_in_time_and_refuses_the_rest_at_once() -> None:
    """Issue 25 (5): a fixed-length queue refused work a fast tier could do (goodput fell to a third at 8x load)
    and kept work a slow tier could not (it timed out after waiting); the expected wait decides instead."""
    async def scenario() -> None:
        limiter = Limiter("search", 1, max_queue=256, max_wait_s=0.25)
        await limiter.acquire()
        limiter.release(0.1)  # one observed hold of 0.1 s (given, not slept: the rule, not this machine's timing)
        await limiter.acquire()  # the slot is taken again
        queued = [asyncio.create_task(limiter.acquire()) for _ in range(2)]  # expected waits 0.1 and 0.2 s
        await asyncio.sleep(0)
        assert limiter.waiting == 2
        with pytest.raises(TierSaturatedError) as refused:  # a third would wait ~0.3 s > 0.25 s: refused at once
            await limiter.acquire()
        assert "expected wait" in refused.value.message and limiter.waiting == 2
        for _ in range(3):
            limiter.release(0.1)
            await asyncio.sleep(0)
        await asyncio.gather(*queued)
        assert limiter.in_flight == 0 and limiter.waiting == 0

    asyncio.run(scenario())
