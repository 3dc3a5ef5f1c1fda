"""Start-up warm-up: the server answers at once, says "warming" while a tier loads, and no request waits for a load."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveServer, echo_settings, until_warm

ASK = {"messages": [{"role": "user", "content": "Fix the grammar: he go home"}]}


def test_a_loading_tier_says_warming_and_requests_go_around_it(tmp_path: Path) -> None:
    from router.app import create_app

    loaded = tmp_path / "small-loaded"  # the echo small tier's start() waits for this file, as a loading model
    settings = echo_settings(
        tmp_path, small={"backend": "echo", "options": {"prefix": "small: ", "ready_when_exists": str(loaded)}},
        thresholds={"route.large": 1.0, "route.search": 1.0},  # automatic requests go to the small tier
    )
    with LiveServer(create_app(settings), wait_warm=False) as server:
        health = httpx.get(f"{server.url}/healthz")
        assert health.status_code == 503
        assert health.json()["status"] == "warming"
        assert health.json()["tiers"]["small"] == {"ready": False, "backend": "echo", "detail": "warming up",
                                                   "warming": True, "capabilities": []}
        assert health.json()["tiers"]["large"]["ready"] and not health.json()["tiers"]["large"]["warming"]

        forced = httpx.post(f"{server.url}/v1/chat/completions", json={"model": "frugal-small", **ASK})
        assert forced.status_code == 503 and forced.json()["error"]["code"] == "tier_warming"
        assert int(forced.headers["retry-after"]) >= 1

        auto = httpx.post(f"{server.url}/v1/chat/completions", json={"model": "frugal-auto", **ASK})
        assert auto.status_code == 200 and auto.headers["x-frugal-route"] == "large"
        skipped = auto.json()["frugal"]["attempts"][0]
        assert (skipped["tier"], skipped["sufficient"], skipped["reason"]) == ("small", False, "warming")

        loaded.touch()
        assert until_warm(lambda path: httpx.get(server.url + path))["status"] == "ok"
        after = httpx.post(f"{server.url}/v1/chat/completions", json={"model": "frugal-auto", **ASK})
        assert after.status_code == 200 and after.headers["x-frugal-route"] == "small"


def test_warming_with_no_other_tier_is_a_503_that_says_so(tmp_path: Path) -> None:
    from router.app import create_app

    settings = echo_settings(
        tmp_path, small={"backend": "echo", "options": {"ready_when_exists": str(tmp_path / "never")}},
        large={"backend": "litellm"},  # no model: the large tier is not configured
        thresholds={"route.large": 1.0, "route.search": 1.0},
    )
    with LiveServer(create_app(settings), wait_warm=False) as server:
        auto = httpx.post(f"{server.url}/v1/chat/completions", json={"model": "frugal-auto", **ASK})
    assert auto.status_code == 503
    assert auto.json()["error"]["code"] == "tier_warming" and "retry" in auto.json()["error"]["message"]
    assert "retry-after" in auto.headers


@pytest.mark.slow
def test_the_small_model_loads_at_start_up_every_slot(tmp_path: Path) -> None:
    """With the real SmolLM2: once /healthz stops saying warming, every slot is loaded before any request."""
    from router.app import create_app

    settings = echo_settings(tmp_path, small={"backend": "llamacpp", "max_concurrency": 2})
    app = create_app(settings)
    with LiveServer(app, wait_warm=False) as server:
        report = until_warm(lambda path: httpx.get(server.url + path, timeout=30))
        small = app.state.services.backends["small"]
        assert report["tiers"]["small"]["ready"] and report["status"] == "ok"
        assert small._loaded == 2 and small._free.qsize() == 2  # no request has run: the start-up loaded both
        answer = httpx.post(f"{server.url}/v1/chat/completions", timeout=120,
                            json={"model": "frugal-small", "max_tokens": 8, **ASK})
        assert answer.status_code == 200 and answer.headers["x-frugal-route"] == "small"
        assert small._loaded == 2
