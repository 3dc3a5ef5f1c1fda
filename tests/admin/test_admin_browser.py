"""The dashboard in a real browser: Debian's chromium driven by Playwright against a real server on 127.0.0.1.

``make test`` installs chromium first (the ``browser`` target); when it is missing this test fails, never skips.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.admin.conftest import ADMIN_KEY, DEFAULT_LARGE
from tests.conftest import ESCALATE, LiveServer, echo_settings

CHROMIUM = os.environ.get("FRUGAL_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = [pytest.mark.browser, pytest.mark.slow]
#: A latency as the dashboard writes it: "3.4 ms", "412 ms", "3.2 s", "1 min 32 s".
HUMAN_LATENCY = re.compile(r"\d+(\.\d)? (ms|s)|\d+ min( \d+ s)?")


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium not found at {CHROMIUM}: run `make browser` (apt-get install -y chromium)")
    return CHROMIUM


def test_dashboard_renders_charts_and_its_form_changes_a_threshold(tmp_path: Path, chromium: str) -> None:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect, sync_playwright

    from router.app import create_app

    # the large tier is the shipped litellm backend without a model: not configured, so it degrades to small
    settings = echo_settings(tmp_path, auth={"admin_key": ADMIN_KEY}, large={"backend": "litellm"})
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    with LiveServer(create_app(settings)) as server, sync_playwright() as playwright:
        def chat(model: str, text: str) -> httpx.Response:
            body = {"model": model, "messages": [{"role": "user", "content": text}]}
            return httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=30)

        for text in ("Who wrote Hamlet?", "Fix the grammar: he go home", "Write a Rust HTTP server with tests"):
            assert chat("frugal-auto", text).status_code == 200
        # the search and small echoes both find this insufficient, so whatever the route it ends needing large
        degraded = chat("frugal-auto", f"{ESCALATE}-2 prove the Riemann hypothesis")
        assert degraded.status_code == 200 and degraded.headers["x-frugal-degraded"] == "large-unavailable"
        assert chat("frugal-large", "Summarise War and Peace").status_code == 503  # forced: fails before any tier
        rows = httpx.get(f"{server.url}/admin/requests", headers=admin, timeout=10).json()["requests"]
        degraded_ids = [r["request_id"] for r in rows if any(f.startswith("degraded:") for f in r["flags"])]
        assert degraded.json()["id"] in degraded_ids
        browser = playwright.chromium.launch(executable_path=chromium)
        try:
            for credentials in (None, {"username": "ops", "password": "wrong-key-123"}):
                refused = browser.new_context(http_credentials=credentials)  # type: ignore[arg-type]
                assert_refused(refused.new_page(), f"{server.url}/admin", PlaywrightError)
                refused.close()

            context = browser.new_context(http_credentials={"username": "ops", "password": ADMIN_KEY})
            page = context.new_page()
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            response = page.goto(f"{server.url}/admin")
            assert response is not None and response.status == 200

            charts = page.locator(".chart svg")
            assert charts.count() == 2
            for index in range(2):
                box = charts.nth(index).bounding_box()
                assert box is not None and box["width"] > 200 and box["height"] > 150
            assert page.locator(".chart").nth(0).locator("rect.rect").count() >= 1  # stacked bars of the route mix
            assert page.locator(".chart").nth(1).locator("path.line").count() >= 2  # actual and counterfactual lines
            assert page.locator("[data-card='Requests'] .big").inner_text() == "5"

            health = page.locator("#health")  # the facts of /healthz: every tier, the missing large one not ready
            expect(health.locator("h2 .badge")).to_have_text("degraded")
            assert health.locator("tr[data-tier]").count() == 3
            for tier in ("search", "small"):
                expect(health.locator(f"tr[data-tier='{tier}'] .badge")).to_have_text("ready")
            large = health.locator("tr[data-tier='large']")
            expect(large.locator(".badge")).to_have_text("not ready")
            expect(large).to_contain_text("no model configured")
            expect(health.locator("tr[data-part='classifier'] .badge")).to_have_text("ready")

            assert page.locator("[data-card='Degraded'] .big").inner_text().split()[0] == str(len(degraded_ids))
            expect(page.locator(f"tr[data-request='{degraded.json()['id']}'] td[data-col='degraded']")
                   ).to_have_text("large-unavailable")
            unrouted = page.locator("td[data-col='route']", has_text="not routed")
            expect(unrouted).to_have_text(["not routed (failed before any tier, forced: frugal-large)"])
            latencies = page.locator("td[data-col='latency']").all_inner_texts()
            assert len(latencies) == 5 and all(HUMAN_LATENCY.fullmatch(t) for t in latencies), latencies
            text = page.locator("body").inner_text()
            assert "e+0" not in text and "None" not in text

            field = page.locator("input[data-threshold='route.large']")
            page.fill("#reason", "browser test")
            field.fill("0.37")
            page.fill("#admin-key", "wrong-key-123")  # the API's 401 message is shown and nothing changes
            page.click("#apply")
            expect(page.locator("#status")).to_contain_text("admin key")
            assert "err" in (page.locator("#status").get_attribute("class") or "")
            assert field.get_attribute("data-current") == str(DEFAULT_LARGE)

            page.fill("#admin-key", ADMIN_KEY)
            page.click("#apply")
            expect(page.locator("#status")).to_have_text("applied: version 1")
            assert page.locator("#version").inner_text() == "1"
            expect(page.locator("#history tr").first).to_contain_text(f"route.large: {DEFAULT_LARGE} → 0.37 — browser test")
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
            assert errors == []
            assert requested and all(url.startswith(server.url) for url in requested), requested
        finally:
            browser.close()

        live = httpx.get(f"{server.url}/admin/thresholds", headers=admin, timeout=10).json()
        assert live["thresholds"]["route.large"]["value"] == 0.37 and live["version"] == 1
        history = httpx.get(f"{server.url}/admin/thresholds/history", headers=admin, timeout=10).json()["history"]
        assert history[0]["reason"] == "browser test" and history[0]["changes"]["route.large"]["new"] == 0.37
        assert history[0]["actor"].startswith("admin:")


def assert_refused(page: Any, url: str, error_type: type[Exception]) -> None:
    """Without the right key the dashboard does not load: chromium gives up on the Basic challenge or shows the 401."""
    try:
        response = page.goto(url)
    except error_type as exc:
        assert "ERR_INVALID_AUTH_CREDENTIALS" in str(exc)
        return
    assert response is not None and response.status == 401
    assert page.locator("svg").count() == 0
