"""The dashboard's pure parts (duration units, route labels, degraded reasons, the health panel) and the page
rendered in process over a real SQLite ledger."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from router.admin.dashboard import degraded_reasons, health_panel, human_duration, route_label
from tests.admin.conftest import app_client, scored_row
from tests.conftest import echo_settings


@pytest.mark.parametrize(("ms", "text"), [
    (None, "—"),
    (0, "0 ms"),
    (0.42, "0.4 ms"),
    (3.0, "3 ms"),
    (9.96, "10 ms"),
    (412.4, "412 ms"),
    (999.6, "1 s"),
    (3_240, "3.2 s"),
    (9_960, "10 s"),
    (42_300, "42 s"),
    (59_600, "1 min"),
    (91_730, "1 min 32 s"),
    (3_599_600, "1 h"),
    (7_500_000, "2 h 5 min"),
])
def test_human_duration_picks_a_unit_people_read(ms: float | None, text: str) -> None:
    assert human_duration(ms) == text


def test_route_label_says_why_no_tier_answered() -> None:
    base = {"requested_model": "frugal-small", "forced": True, "route": None, "attempts": []}
    assert route_label(base) == "not routed (failed before any tier, forced: frugal-small)"
    assert route_label({**base, "forced": False}) == "not routed (failed before any tier)"
    tried = {**base, "forced": False, "attempts": [{"tier": "search"}, {"tier": "large"}]}
    assert route_label(tried) == "not routed (no tier answered, tried search → large)"
    assert route_label({**base, "route": "small"}) == "small (forced)"
    assert route_label({**base, "route": "large", "forced": False}) == "large"


def test_degraded_reasons_come_from_the_degraded_flags_only() -> None:
    assert degraded_reasons(["long_prompt", "degraded:large-unavailable"]) == ["large-unavailable"]
    assert degraded_reasons([]) == [] and degraded_reasons(None) == []


def test_health_panel_renders_any_health_dict_including_warming_tiers() -> None:
    health = {
        "status": "warming",
        "tiers": {
            "search": {"ready": True, "backend": "tantivy", "detail": "1,204 documents"},
            "small": {"ready": False, "warming": True, "backend": "llamacpp", "detail": "loading the model"},
            "large": {"ready": False, "backend": None, "detail": "not configured"},
        },
        "classifier": {"ready": True, "detail": ""},
        "on_large_unavailable": "degrade",
        "ledger": {"spooling": False, "spooled_rows": 0},
        "uptime_s": 12,  # a key this page does not know yet
    }
    html = health_panel(health)
    assert 'Tier health <span class="badge b-warn" data-state="warming">' in html
    rows = dict(re.findall(r'<tr data-tier="(\w+)">(.*?)</tr>', html))
    assert 'data-state="ready"' in rows["search"] and "tantivy" in rows["search"]
    assert 'data-state="warming"' in rows["small"] and "loading the model" in rows["small"]
    assert 'data-state="not ready"' in rows["large"] and "not configured" in rows["large"]
    assert "None" not in html
    for fact in ("on large unavailable", "degrade", "spooling: no", "spooled rows: 0", "uptime s", "12"):
        assert fact in html


def test_the_page_counts_and_shows_degraded_requests_and_labels_unrouted_ones(tmp_path: Path) -> None:
    failed = scored_row(3, None, forced=True, latency_ms=0.2, error_code="service_unavailable")
    failed.route, failed.status, failed.requested_model = None, 503, "frugal-large"  # forced, large not configured
    with app_client(echo_settings(tmp_path)) as client:
        client.app.state.services.ledger.record_many([  # type: ignore[attr-defined]
            scored_row(1, (0.1, 0.2, 0.7), latency_ms=91_730.0, flags=["degraded:large-unavailable"]),
            scored_row(2, (0.6, 0.3, 0.1), route="search", latency_ms=412.0),
            failed,
        ])
        page = client.get("/admin").text
    assert re.search(r'data-card="Degraded">.*?<div class="big">1 ', page)
    assert re.search(r'data-col="degraded">large-unavailable<', page)
    assert "1 min 32 s" in page and "412 ms" in page and "e+0" not in page
    assert "not routed (failed before any tier, forced: frugal-large)" in page and "None" not in page
    assert 'data-tier="large"' in page and 'data-state="ready"' in page
