"""Faults, each answered cleanly: the large tier down, slow, rate limited, failing or answering garbage (a
real server on 127.0.0.1 through litellm); a missing or corrupt small model; a missing or corrupt index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from router.settings import load_settings
from tests.conftest import free_port, until_warm
from tests.fixtures.llama_server import FaultServer
from tests.reliability.test_limits import assert_openai_error, user

AUTO_TO_LARGE = {"route.large": 0.0}  # every automatic request is routed to the large tier


def fault_settings(tmp_path: Path, api_base: str, **overrides: Any) -> Any:
    """Echo search and small tiers; the large tier is litellm against ``api_base`` with a 1 s timeout."""
    base: dict[str, Any] = {
        "data_dir": tmp_path / "data", "demo_index": False,
        "search": {"backend": "echo", "options": {"prefix": "search: "}},
        "small": {"backend": "echo", "options": {"prefix": "small: "}},
        "large": {"backend": "litellm", "model": "openai/fault", "api_base": api_base, "timeout_s": 1.0,
               "options": {"num_retries": 0}},
        "thresholds": AUTO_TO_LARGE,
    }
    base.update(overrides)
    return load_settings(None, **base)


def ask(client: Any, model: str) -> Any:
    return client.post("/v1/chat/completions", json={"model": model, "messages": user("prove that 2 is prime")})


def run(settings: Any, *models: str) -> list[Any]:
    from fastapi.testclient import TestClient

    from router.app import create_app

    with TestClient(create_app(settings)) as client:
        return [ask(client, model) for model in models]


def test_large_server_down_degrades_in_auto_mode_and_is_a_503_when_forced_or_told(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    degraded, forced = run(fault_settings(tmp_path, dead), "frugal-auto", "frugal-large")
    assert degraded.status_code == 200 and degraded.headers["x-frugal-degraded"] == "large-unavailable"
    assert degraded.json()["choices"][0]["message"]["content"].startswith("small: ")
    message = assert_openai_error(forced, 503, "tier_unavailable")["message"]
    assert "configured but not available" in message and "openai/fault" in message and dead in message, message
    (strict,) = run(fault_settings(tmp_path / "strict", dead, on_large_unavailable="error"), "frugal-auto")
    assert_openai_error(strict, 503, "tier_unavailable")


@pytest.mark.slow
def test_slow_large_server_times_out_as_504_or_degrades(tmp_path: Path, fault_server: FaultServer) -> None:
    slow = fault_server.api_base("slow")
    degraded, forced = run(fault_settings(tmp_path, slow), "frugal-auto", "frugal-large")
    assert degraded.status_code == 200 and degraded.headers["x-frugal-degraded"] == "large-unavailable"
    assert degraded.json()["frugal"]["attempts"][0]["reason"] == "error: backend_timeout"
    assert assert_openai_error(forced, 504, "backend_timeout")["type"] == "timeout"
    (strict,) = run(fault_settings(tmp_path / "strict", slow, on_large_unavailable="error"), "frugal-auto")
    assert_openai_error(strict, 504, "backend_timeout")


def test_large_server_rate_limited_passes_retry_after_on(tmp_path: Path, fault_server: FaultServer) -> None:
    limited = fault_server.api_base("429")
    degraded, forced = run(fault_settings(tmp_path, limited), "frugal-auto", "frugal-large")
    assert degraded.status_code == 200 and degraded.headers["x-frugal-degraded"] == "large-unavailable"
    assert_openai_error(forced, 429)
    assert forced.headers["retry-after"] == "7"  # the upstream's Retry-After, passed on


@pytest.mark.parametrize("mode", ["500", "malformed"])
def test_large_server_errors_and_garbage_are_502_not_500(tmp_path: Path, fault_server: FaultServer, mode: str) -> None:
    auto, forced = run(fault_settings(tmp_path, fault_server.api_base(mode)), "frugal-auto", "frugal-large")
    for response in (auto, forced):  # a broken provider is shown, not hidden behind degraded answers
        assert assert_openai_error(response, 502)["type"] == "upstream_error"


@pytest.mark.parametrize("problem", ["missing", "corrupt"])
def test_a_broken_small_model_is_reported_and_the_other_tiers_serve(tmp_path: Path, problem: str) -> None:
    from fastapi.testclient import TestClient

    from router.app import create_app

    gguf = tmp_path / "broken.gguf"
    if problem == "corrupt":
        gguf.write_bytes(b"GGUF" + b"\x00garbage" * 64)
    settings = load_settings(
        None, data_dir=tmp_path / "data", demo_index=False,
        search={"backend": "echo", "options": {"prefix": "search: "}},
        small={"backend": "llamacpp", "model": str(gguf)},
        large={"backend": "echo", "options": {"prefix": "large: "}},
        thresholds={"route.large": 1.0, "route.search": 1.0},  # automatic requests go to the small tier
    )
    with TestClient(create_app(settings)) as client:
        health = until_warm(client.get)  # the broken model fails its start-up load
        auto = ask(client, "frugal-auto")
        forced = ask(client, "frugal-small")
        search = ask(client, "frugal-search")
    small = health["tiers"]["small"]
    assert health["status"] == "degraded" and not small["ready"]
    assert str(gguf) in small["detail"]
    assert ("not found" in small["detail"]) if problem == "missing" else ("could not load" in small["detail"])
    assert auto.status_code == 200 and auto.headers["x-frugal-route"] == "large"
    assert_openai_error(forced, 503, "tier_unavailable")
    assert search.status_code == 200 and health["tiers"]["large"]["ready"]


@pytest.mark.parametrize("problem", ["missing", "corrupt"])
def test_a_missing_or_corrupt_index_is_reported_and_the_other_tiers_serve(tmp_path: Path, problem: str) -> None:
    from fastapi.testclient import TestClient

    from router.app import create_app

    index = tmp_path / "index"
    if problem == "corrupt":
        index.mkdir()
        (index / "meta.json").write_text('{"segments": [ not json')
    settings = load_settings(
        None, data_dir=tmp_path / "data", demo_index=False,
        search={"backend": "tantivy", "options": {"index_dir": str(index)}},
        small={"backend": "echo", "options": {"prefix": "small: "}},
        large={"backend": "echo", "options": {"prefix": "large: "}},
        thresholds={"route.search": 0.0},  # automatic requests go to the search tier first
    )
    with TestClient(create_app(settings)) as client:
        health = client.get("/healthz").json()
        auto = client.post("/v1/chat/completions", json={"model": "frugal-auto",
                                                         "messages": user("When did the Berlin Wall fall?")})
        forced = ask(client, "frugal-search")
    search = health["tiers"]["search"]
    assert health["status"] == "degraded" and not search["ready"]
    assert str(index) in search["detail"]
    expected = "frugal index add" if problem == "missing" else "cannot be opened"
    assert expected in search["detail"], search["detail"]
    assert auto.status_code == 200 and auto.headers["x-frugal-route"] in ("small", "large")
    assert auto.json()["frugal"]["attempts"][0] == {**auto.json()["frugal"]["attempts"][0], "tier": "search",
                                                   "reason": "unavailable"}
    assert_openai_error(forced, 503, "tier_unavailable")
