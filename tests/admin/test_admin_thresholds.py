"""Live thresholds over the admin API on a real SQLite ledger: validation, atomicity, persistence, audit, polling."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest

from router.core.policy import all_specs
from tests.admin.conftest import DEFAULT_LARGE, app_client, wait_for

CHAT = {"model": "frugal-auto", "messages": [{"role": "user", "content": "Fix the grammar: he go to school yesterday"}]}


def values(client: Any) -> dict[str, float]:
    body = client.get("/admin/thresholds").json()
    return {name: spec["value"] for name, spec in body["thresholds"].items()}


def put(client: Any, thresholds: dict[str, Any], reason: str = "test") -> Any:
    return client.put("/admin/thresholds", json={"thresholds": thresholds, "reason": reason})


def test_get_lists_every_threshold_of_the_policy_and_the_gates(make_settings: Any) -> None:
    with app_client(make_settings()) as client:
        body = client.get("/admin/thresholds").json()
    assert set(body["thresholds"]) == {spec.name for spec in all_specs()}
    assert {"route.large", "route.search", "search.min_confidence", "small.min_confidence"} <= set(body["thresholds"])
    large = body["thresholds"]["route.large"]
    assert (large["min"], large["max"], large["value"]) == (0.0, 1.0, large["default"])
    assert body["version"] == 0 and body["poll_s"] == 2.0


def test_put_applies_at_once_to_routing_without_restart(make_settings: Any) -> None:
    with app_client(make_settings()) as client:
        assert client.post("/v1/chat/completions", json=CHAT).headers["x-frugal-route"] != "large"
        response = put(client, {"route.large": 0.0}, reason="send everything to the large tier")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["version"] == 1 and body["thresholds"]["route.large"]["value"] == 0.0
        assert body["change"]["changes"] == {"route.large": {"old": DEFAULT_LARGE, "new": 0.0}}
        assert client.post("/v1/chat/completions", json=CHAT).headers["x-frugal-route"] == "large"
        assert client.app.state.services.thresholds.get("route.large") == 0.0


@pytest.mark.parametrize(("body", "needle"), [
    ({"thresholds": {"route.large": 0.3, "route.nope": 0.1}, "reason": "r"}, "unknown threshold 'route.nope'"),
    ({"thresholds": {"route.large": 0.3, "route.search": 1.5}, "reason": "r"}, "route.search=1.5 is outside"),
    ({"thresholds": {"route.large": "high"}, "reason": "r"}, "must be a number"),
    ({"thresholds": {"route.large": True}, "reason": "r"}, "must be a number"),
    ({"thresholds": {"route.large": None}, "reason": "r"}, "must be a number"),
    ({"thresholds": {}, "reason": "r"}, "thresholds"),
    ({"thresholds": {"route.large": 0.3}}, "reason"),
    ({"thresholds": {"route.large": 0.3}, "reason": ""}, "reason"),
    ({"thresholds": {"route.large": 0.3}, "reason": "r", "extra": 1}, "extra"),
])
def test_invalid_put_is_a_422_that_changes_nothing(make_settings: Any, body: dict[str, Any], needle: str) -> None:
    with app_client(make_settings()) as client:
        before = values(client)
        response = client.put("/admin/thresholds", json=body)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert needle in error["message"] and error["type"] == "invalid_request_error"
        if "unknown" in needle or "outside" in needle:
            assert "Valid thresholds: route.large [0.0, 1.0], route.search [0.0, 1.0]" in error["message"]
        assert values(client) == before
        assert client.get("/admin/thresholds").json()["version"] == 0
        assert client.get("/admin/thresholds/history").json() == {"history": []}


def test_malformed_json_is_a_422_not_a_500(make_settings: Any) -> None:
    with app_client(make_settings()) as client:
        response = client.put("/admin/thresholds", content=b"{not json", headers={"content-type": "application/json"})
        assert response.status_code == 422 and "error" in response.json()


def test_persisted_values_survive_a_restart_and_beat_the_config_file(make_settings: Any) -> None:
    config = {"route.large": 0.3, "search.min_confidence": 0.6}
    with app_client(make_settings(thresholds=config)) as client:
        assert values(client)["route.large"] == 0.3
        assert put(client, {"route.large": 0.35, "route.search": 0.7}, reason="persist me").status_code == 200
    with app_client(make_settings(thresholds={**config, "route.large": 0.1})) as client:  # a new app, same SQLite file
        now = values(client)
        body = client.get("/admin/thresholds").json()
    assert (now["route.large"], now["route.search"]) == (0.35, 0.7)  # persisted wins over the config file
    assert now["search.min_confidence"] == 0.6  # never persisted: the config file's value
    assert now["small.min_confidence"] == 0.5  # neither: the default
    assert body["version"] == 1


def test_audit_trail_records_who_when_old_new_and_why(make_settings: Any) -> None:
    with app_client(make_settings(thresholds={"route.large": 0.3})) as client:
        put(client, {"route.large": 0.25}, reason="first")
        put(client, {"route.large": 0.4, "small.min_confidence": 0.6}, reason="second")
        client.put("/admin/thresholds", json={"thresholds": {"route.large": 7}, "reason": "rejected"})
        history = client.get("/admin/thresholds/history").json()["history"]
        assert client.get("/admin/thresholds/history?limit=1").json()["history"] == history[:1]
    assert [h["version"] for h in history] == [2, 1]
    assert [h["reason"] for h in history] == ["second", "first"]
    assert history[1]["changes"] == {"route.large": {"old": 0.3, "new": 0.25}}  # old: the config file's value
    assert history[0]["changes"] == {"route.large": {"old": 0.25, "new": 0.4}, "small.min_confidence": {"old": 0.5, "new": 0.6}}
    assert all(h["actor"] == "local-admin" and h["changed_at"].endswith("+00:00") for h in history)


def test_actor_names_the_key_and_the_declared_user(make_settings: Any) -> None:
    from router.auth import hash_key

    with app_client(make_settings(auth={"admin_key": "key-12345"})) as client:
        headers = {"authorization": "Bearer key-12345", "x-frugal-actor": "alice <script>"}
        client.put("/admin/thresholds", json={"thresholds": {"route.large": 0.3}, "reason": "r"}, headers=headers)
        history = client.get("/admin/thresholds/history", headers=headers).json()["history"]
    assert history[0]["actor"] == f"admin:{hash_key('key-12345')[:8]} (alicescript)"


def test_a_change_made_by_one_app_reaches_another_within_the_poll_interval(make_settings: Any) -> None:
    poll = 0.2
    with app_client(make_settings(thresholds_poll_s=poll)) as first, app_client(make_settings(thresholds_poll_s=poll)) as second:
        assert put(first, {"route.search": 0.8}).status_code == 200
        elapsed = wait_for(lambda: values(second)["route.search"] == 0.8, timeout=poll + 2.0)
        assert elapsed <= poll + 1.0
        assert second.app.state.threshold_sync.version == 1


def test_concurrent_puts_get_distinct_consecutive_versions(make_settings: Any) -> None:
    with app_client(make_settings(thresholds_poll_s=0.1)) as first, app_client(make_settings(thresholds_poll_s=0.1)) as second:
        results: list[tuple[int, float]] = []
        lock = threading.Lock()

        def writer(client: Any, base: float) -> None:
            for i in range(8):
                value = round(base + i / 100, 2)
                body = put(client, {"route.large": value}).json()
                with lock:
                    results.append((body["version"], value))

        threads = [threading.Thread(target=writer, args=(c, b)) for c, b in ((first, 0.1), (second, 0.5))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        versions = sorted(v for v, _ in results)
        assert versions == list(range(1, 17))
        last = max(results)[1]
        history = first.get("/admin/thresholds/history?limit=100").json()["history"]
        assert [h["version"] for h in history] == list(range(16, 0, -1))
        for newer, older in itertools.pairwise(history):  # every old value is the previous new one
            assert newer["changes"]["route.large"]["old"] == older["changes"]["route.large"]["new"]
        wait_for(lambda: values(first)["route.large"] == last and values(second)["route.large"] == last, timeout=3)


def test_recent_requests_hide_text_unless_store_text(make_settings: Any) -> None:
    with app_client(make_settings()) as client:
        client.post("/v1/chat/completions", json=CHAT)
        rows = client.get("/admin/requests?limit=5").json()["requests"]
        assert len(rows) == 1 and rows[0]["route"] in {"search", "small", "large"}
        assert "prompt_text" not in rows[0] and set(rows[0]["scores"]) == {"search", "small", "large"}
        assert "he go to school" not in client.get("/admin").text
    with app_client(make_settings(store_text=True)) as client:
        client.post("/v1/chat/completions", json=CHAT)
        rows = client.get("/admin/requests").json()["requests"]
        assert rows[0]["prompt_text"] == CHAT["messages"][0]["content"]
        assert "he go to school" in client.get("/admin").text


def test_reports_in_three_formats(make_settings: Any) -> None:
    with app_client(make_settings()) as client:
        for _ in range(3):
            client.post("/v1/chat/completions", json=CHAT)
        report = client.get("/admin/report.json").json()
        assert {"period", "requests", "by_tier", "escalations", "energy_wh", "co2e_g", "cost_usd", "counterfactual",
                "avoided", "requests_per_wh", "daily", "method"} <= set(report)
        assert report["requests"] == 3
        assert client.get("/admin/report.json?since=2999-01-01T00:00:00Z").json()["requests"] == 0
        csv = client.get("/admin/report.csv")
        assert csv.headers["content-type"].startswith("text/csv") and csv.text.startswith("section,key,metric")
        html = client.get("/admin/report.html")
        assert html.headers["content-type"].startswith("text/html") and "<svg" in html.text
        assert client.get("/admin/report.json?since=yesterday").status_code == 422


def test_dashboard_shows_charts_thresholds_and_history(make_settings: Any) -> None:
    with app_client(make_settings()) as client:
        client.post("/v1/chat/completions", json=CHAT)
        put(client, {"route.search": 0.6}, reason="dashboard shows me")
        page = client.get("/admin")
        daily = client.get("/admin?hours=200")  # beyond 72 hours the charts go per day
        assert daily.status_code == 200 and daily.text.count("<svg") == 2 and "Last 200 hours" in daily.text
        assert client.get("/admin?hours=0").status_code == 422
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.text.count("<svg") == 2 and 'data-threshold="route.large"' in page.text
    assert "dashboard shows me" in page.text and 'value="0.6"' in page.text
    assert "http://" not in page.text.replace("http://www.w3.org", "")  # nothing loaded from elsewhere
