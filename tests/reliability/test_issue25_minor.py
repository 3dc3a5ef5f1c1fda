"""Issue 25 item 9, three minor defects, over real HTTP (each test failed on the tree before the fix).

(a) A forced ``frugal-large`` that could not be served said "configure FRUGAL_LARGE__MODEL" even when the large
tier was configured and merely unreachable. (b) ``"max_tokens": true`` was read as 1 and ``"stream": "false"``
as a boolean. (c) A degraded answer (the small tier standing in for the large one) had the small tier's whole
budget, so it could hold the small tier's only slot for two minutes; it now has its own, tighter one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer, echo_settings, free_port

DEGRADE = {"thresholds": {"route.large": 0.0}, "large": {"backend": "echo", "enabled": False}}  # auto -> degraded


def post(live: LiveServer, text: str = "prove that 2 is prime", model: str = "frugal-auto", **extra: Any) -> httpx.Response:
    return httpx.post(f"{live.url}/v1/chat/completions", timeout=60,
                      json={"model": model, "messages": [{"role": "user", "content": text}], **extra})


def serve(settings: Any) -> LiveServer:
    from router.app import create_app

    return LiveServer(create_app(settings))


# (a) not configured vs configured but unavailable


def test_forced_large_without_a_model_says_how_to_configure_it(tmp_path: Path) -> None:
    with serve(echo_settings(tmp_path, large={"backend": "litellm"})) as live:
        forced = post(live, model="frugal-large")
    error = forced.json()["error"]
    assert forced.status_code == 503 and error["param"] == "model", forced.text
    assert "no model configured" in error["message"] and "FRUGAL_LARGE__MODEL" in error["message"]


def test_forced_large_that_is_configured_but_unreachable_says_which_and_why(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    large = {"backend": "litellm", "model": "openai/elsewhere", "api_base": dead, "options": {"num_retries": 0}}
    with serve(echo_settings(tmp_path, large=large, on_large_unavailable="error", thresholds={"route.large": 0.0})) \
            as live:
        forced = post(live, model="frugal-large")
        auto = post(live)
    for response in (forced, auto):
        message = response.json()["error"]["message"]
        assert response.status_code == 503, response.text
        assert "configured but not available" in message and "openai/elsewhere" in message and dead in message
        assert "cannot reach" in message and "FRUGAL_LARGE__MODEL" not in message, message
    assert "on_large_unavailable: degrade" in auto.json()["error"]["message"]  # the one setting that helps there
    assert "on_large_unavailable" not in forced.json()["error"]["message"]  # a forced model never degrades


# (b) strict booleans and integers


@pytest.fixture(scope="module")
def echo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(echo_settings(tmp_path_factory.mktemp("strict"))) as live:
        yield live


@pytest.mark.parametrize(("field", "value"), [
    ("stream", "false"), ("stream", "true"), ("stream", 0), ("max_tokens", True), ("max_tokens", "8"),
    ("max_tokens", 8.0), ("max_completion_tokens", True), ("n", True), ("seed", "7"),
    ("temperature", "0.5"), ("temperature", True), ("top_p", "1"), ("stream_options", {"include_usage": "yes"}),
])
def test_a_value_of_the_wrong_json_type_is_a_422_naming_the_parameter(echo_server: LiveServer, field: str,
                                                                       value: object) -> None:
    response = post(echo_server, "hello", model="frugal-small", **{field: value})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"].split(".")[0] == field, error


def test_the_right_types_still_pass_and_a_whole_number_is_a_valid_float(echo_server: LiveServer) -> None:
    response = post(echo_server, "hello", model="frugal-small", stream=False, max_tokens=8, n=1, seed=7,
                    temperature=1, top_p=1, stream_options=None)
    assert response.status_code == 200, response.text


# (c) a degraded answer's own budget


def test_a_degraded_answer_has_its_own_time_budget(tmp_path: Path) -> None:
    settings = echo_settings(tmp_path, **DEGRADE, limits={"degraded_timeout_s": 0.3},
                             small={"backend": "echo", "options": {"prefix": "small: ", "delay": 1.5}})
    with serve(settings) as live:
        started = time.monotonic()
        degraded = post(live)
        degraded_s = time.monotonic() - started
        forced = post(live, model="frugal-small")  # not degraded: the small tier's own 120 s
    assert degraded.status_code == 504 and "0.3 s" in degraded.json()["error"]["message"], degraded.text
    assert degraded_s < 1.4  # the slot was given back at the budget, not when the small tier finished
    assert forced.status_code == 200 and "degraded_budget" not in forced.json()["frugal"], forced.text


def test_the_degraded_budget_is_stated_in_the_frugal_object_streamed_or_not(tmp_path: Path) -> None:
    settings = echo_settings(tmp_path, **DEGRADE, limits={"degraded_max_tokens": 64, "degraded_timeout_s": 20})
    with serve(settings) as live:
        whole = post(live)
        with httpx.stream("POST", f"{live.url}/v1/chat/completions", timeout=60, json={
                "model": "frugal-auto", "stream": True, "messages": [{"role": "user", "content": "prove it"}]}) as sse:
            chunks = [json.loads(line[6:]) for line in sse.iter_lines() if line.startswith("data: {")]
    assert whole.status_code == 200 and whole.headers["x-frugal-degraded"] == "large-unavailable", whole.text
    assert whole.json()["frugal"]["degraded_budget"] == {"max_tokens": 64, "timeout_s": 20}
    last = next(chunk["frugal"] for chunk in reversed(chunks) if "frugal" in chunk)
    assert last["degraded"] == "large-unavailable" and last["degraded_budget"] == {"max_tokens": 64, "timeout_s": 20}


def test_the_degraded_token_budget_reaches_the_real_small_model(tmp_path: Path) -> None:
    settings = echo_settings(tmp_path, **DEGRADE, small={"backend": "llamacpp"}, limits={"degraded_max_tokens": 5})
    with serve(settings) as live:
        degraded = post(live, "Write a long story about a dragon who learns to cook.", max_tokens=200)
    assert degraded.status_code == 200 and degraded.json()["frugal"]["degraded"] == "large-unavailable", degraded.text
    assert degraded.json()["usage"]["completion_tokens"] <= 5
    assert degraded.json()["choices"][0]["finish_reason"] == "length"
