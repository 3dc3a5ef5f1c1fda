"""Regressions from the attack run of issue 25, over real HTTP: lone surrogates (6), extreme report dates (7).

(6) A JSON string may escape a lone UTF-16 surrogate (``"hi \\ud800"``), which is not valid Unicode: it crashed
the classifier and tantivy's analyzer with a 500, and under ``frugal-auto`` left no ledger row. (7) Admin
periods whose UTC conversion leaves datetime's range raised OverflowError (500).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer, echo_settings

ADMIN_KEY = "attack-admin-key-0123"
LONE = '{"model": "%s", "messages": [{"role": "user", "content": "hi \\ud800 there"}]}'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Any]]:
    from backends.search.ingest import ingest_paths
    from router.app import create_app
    from tests.backends.search.conftest import write_corpus

    root = Path(tmp_path_factory.mktemp("attack"))
    ingest_paths(root / "data" / "index", [write_corpus(root)], progress=False)
    app = create_app(echo_settings(root, search={"backend": "tantivy"}, auth={"admin_key": ADMIN_KEY}))
    with LiveServer(app) as live:
        yield live, app


@pytest.mark.parametrize("model", ["frugal-auto", "frugal-search", "frugal-small"])
def test_a_lone_surrogate_is_a_clear_400_and_the_connection_stays_usable(server: tuple[LiveServer, Any],
                                                                        model: str) -> None:
    live, _app = server
    with httpx.Client(base_url=live.url, timeout=30) as client:
        bad = client.post("/v1/chat/completions", content=(LONE % model).encode(),
                          headers={"content-type": "application/json"})
        good = client.post("/v1/chat/completions", json={"model": model, "messages": [
            {"role": "user", "content": "When did the Berlin Wall fall?"}]})
    assert bad.status_code == 400, bad.text
    error = bad.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == "messages.0.content"
    assert "surrogate" in error["message"]
    assert good.status_code == 200  # the same keep-alive connection still serves


def test_surrogates_in_stop_and_user_are_refused_too(server: tuple[LiveServer, Any]) -> None:
    live, _app = server
    for field, param in (('"stop": ["\\udfff"]', "stop.0"), ('"user": "u\\ud800"', "user")):
        body = '{"model": "frugal-small", "messages": [{"role": "user", "content": "hi"}], ' + field + "}"
        response = httpx.post(f"{live.url}/v1/chat/completions", content=body.encode(),
                              headers={"content-type": "application/json"}, timeout=30)
        assert response.status_code == 400 and response.json()["error"]["param"] == param, response.text


def test_a_crash_in_the_classifier_is_a_500_with_its_ledger_row(server: tuple[LiveServer, Any]) -> None:
    live, app = server
    services = app.state.services
    classifier = services.dispatcher.classifier
    real = classifier.predict

    def broken(messages: Any) -> Any:
        raise RuntimeError("a bug in the classifier")

    classifier.predict = broken
    try:
        response = httpx.post(f"{live.url}/v1/chat/completions", timeout=30, json={
            "model": "frugal-auto", "messages": [{"role": "user", "content": "a request that meets a bug"}]})
    finally:
        classifier.predict = real
    assert response.status_code == 500 and response.json()["error"]["type"] == "api_error"
    rows = [r for r in services.ledger.rows() if r.status == 500]
    assert rows and rows[-1].error_code == "internal_error"


@pytest.mark.parametrize(("method", "path", "extra"), [
    ("GET", "/admin/report.json?since=0001-01-01T00:00:00%2B14:00", None),
    ("GET", "/admin/report.csv?until=9999-12-31T23:59:59-14:00", None),
    ("GET", "/admin/report.html?since=0001-01-01T00:00:00", None),
    ("POST", "/admin/calibrate", {"large_share": 0.3, "since": "0001-01-01T00:00:00+14:00"}),
    ("POST", "/admin/whatif", {"thresholds": {"route.large": 0.3}, "until": "9999-12-31T23:59:59-14:00"}),
])
def test_report_periods_outside_the_range_are_a_422(server: tuple[LiveServer, Any], method: str, path: str,
                                                   extra: dict[str, Any] | None) -> None:
    live, _app = server
    response = httpx.request(method, f"{live.url}{path}", json=extra, timeout=30,
                             headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert response.status_code == 422, response.text
    assert "outside the supported range" in response.text


def test_ordinary_periods_still_report(server: tuple[LiveServer, Any]) -> None:
    live, _app = server
    response = httpx.get(f"{live.url}/admin/report.json?since=2020-01-01T00:00:00%2B14:00&until=9999-12-29",
                         headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=30)
    assert response.status_code == 200, response.text
