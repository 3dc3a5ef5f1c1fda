"""The OpenAI-compatible chat endpoint, in process: shapes, headers, the frugal object, routing, escalation."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ESCALATE, echo_settings

FRUGAL_KEYS = {"request_id", "route", "forced", "scores", "attempts", "energy_wh", "co2e_g", "cost_usd",
               "avoided_wh", "sources"}
HEADERS = ["x-frugal-route", "x-frugal-escalations", "x-frugal-energy-wh", "x-frugal-co2e-g",
           "x-frugal-avoided-wh", "x-frugal-request-id"]


def chat(client, text: str, model: str = "frugal-auto", **extra):
    return client.post("/v1/chat/completions",
                       json={"model": model, "messages": [{"role": "user", "content": text}], **extra})


def test_forced_tier_answers_in_openai_shape_with_headers_and_frugal_object(client) -> None:
    response = chat(client, "rewrite this politely: give me the report", model="frugal-small")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == "frugal-small"
    assert body["choices"][0]["message"] == {"role": "assistant",
                                             "content": "small: rewrite this politely: give me the report",
                                             "refusal": None}
    assert body["choices"][0]["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    frugal = body["frugal"]
    assert FRUGAL_KEYS <= set(frugal)
    assert frugal["route"] == "small" and frugal["forced"] is True and frugal["scores"] is None
    assert [a["tier"] for a in frugal["attempts"]] == ["small"]
    assert set(frugal["energy_wh"]) == {"value", "min", "max"}
    assert frugal["energy_wh"]["min"] <= frugal["energy_wh"]["value"] <= frugal["energy_wh"]["max"]
    for header in HEADERS:
        assert header in response.headers
    assert response.headers["x-frugal-route"] == "small"
    assert response.headers["x-frugal-request-id"] == body["id"] == frugal["request_id"]
    assert float(response.headers["x-frugal-energy-wh"]) == pytest.approx(frugal["energy_wh"]["value"], rel=1e-3)


def test_forced_tier_never_escalates_and_reports_insufficient(client) -> None:
    response = chat(client, f"who wrote {ESCALATE}?", model="frugal-search")
    assert response.status_code == 200
    frugal = response.json()["frugal"]
    assert frugal["route"] == "search"
    assert frugal["attempts"] == [dict(frugal["attempts"][0], tier="search", sufficient=False)]
    assert response.headers["x-frugal-escalations"] == "0"


def test_auto_route_classifies_and_reports_scores(client) -> None:
    response = chat(client, "What is the capital of France?")
    assert response.status_code == 200
    frugal = response.json()["frugal"]
    assert frugal["forced"] is False
    assert set(frugal["scores"]) == {"search", "small", "large"}
    assert sum(frugal["scores"].values()) == pytest.approx(1.0, abs=1e-6)
    assert frugal["route"] == "search"


def test_auto_route_sends_code_requests_to_large(client) -> None:
    text = ("Write a Python function that parses an ISO-8601 duration like P3DT4H and returns seconds, "
            "with tests for edge cases and error handling.")
    assert chat(client, text).json()["frugal"]["route"] == "large"


def test_insufficient_answers_escalate_with_every_attempt_recorded(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from router.app import create_app

    settings = echo_settings(tmp_path, search_escalates_to="small", thresholds={"route.large": 1.0, "route.search": 0.0})
    with TestClient(create_app(settings)) as client:
        once = chat(client, f"who is {ESCALATE}?").json()["frugal"]
        twice = chat(client, f"who is {ESCALATE}-2?").json()["frugal"]
        rows = list(client.app.state.services.ledger.rows())
    assert [(a["tier"], a["sufficient"]) for a in once["attempts"]] == [("search", False), ("small", True)]
    assert once["route"] == "small"
    assert [a["tier"] for a in twice["attempts"]] == ["search", "small", "large"]
    assert twice["route"] == "large"
    assert [r.escalations for r in rows] == [1, 2]
    assert [r.route for r in rows] == ["small", "large"]


def test_max_escalations_zero_stops_at_the_first_tier(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from router.app import create_app

    settings = echo_settings(tmp_path, max_escalations=0, thresholds={"route.large": 1.0, "route.search": 0.0})
    with TestClient(create_app(settings)) as client:
        frugal = chat(client, f"who is {ESCALATE}?").json()["frugal"]
    assert frugal["route"] == "search" and len(frugal["attempts"]) == 1


def test_every_answered_request_has_one_ledger_row(client) -> None:
    ids = [chat(client, f"say hello number {i}", model="frugal-small").json()["id"] for i in range(5)]
    rows = list(client.app.state.services.ledger.rows())
    assert sorted(r.request_id for r in rows) == sorted(ids)
    assert all(r.status == 200 and r.prompt_text is None for r in rows)


def test_streaming_sends_openai_chunks_then_frugal_object_and_done(client) -> None:
    with client.stream("POST", "/v1/chat/completions", json={
        "model": "frugal-small", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "make this formal: hey there friend"}],
    }) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-frugal-route"] == "small"
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "small: make this formal: hey there friend"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    assert chunks[-1]["frugal"]["route"] == "small"


def test_streaming_auto_escalation_streams_the_final_tier(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from router.app import create_app

    settings = echo_settings(tmp_path, search_escalates_to="small", thresholds={"route.large": 1.0, "route.search": 0.0})
    with TestClient(create_app(settings)) as client, client.stream("POST", "/v1/chat/completions", json={
        "model": "frugal-auto", "stream": True, "messages": [{"role": "user", "content": f"x {ESCALATE}-2"}],
    }) as response:
        assert response.headers["x-frugal-route"] == "large"
        assert response.headers["x-frugal-energy-partial"] == "true"
        lines = [line for line in response.iter_lines() if line]
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == f"large: x {ESCALATE}-2"
    assert chunks[-1]["frugal"]["route"] == "large" and len(chunks[-1]["frugal"]["attempts"]) == 3


@pytest.mark.parametrize("text", ["rewrite this politely: give me the report", f"x {ESCALATE}-1"])
def test_streamed_escalation_header_agrees_with_the_body(client, text: str) -> None:
    with client.stream("POST", "/v1/chat/completions", json={
        "model": "frugal-auto", "stream": True, "messages": [{"role": "user", "content": text}],
    }) as response:
        header = response.headers["x-frugal-escalations"]
        lines = [line for line in response.iter_lines() if line]
    frugal = json.loads(lines[-2].removeprefix("data: "))["frugal"]
    plain = chat(client, text)
    assert int(header) == len(frugal["attempts"]) - 1 == int(plain.headers["x-frugal-escalations"])


def test_content_parts_and_system_messages_are_accepted(client) -> None:
    response = client.post("/v1/chat/completions", json={
        "model": "frugal-small", "temperature": 0.2, "top_p": 0.9, "max_completion_tokens": 50, "seed": 1,
        "stop": ["\n\n"], "user": "u1", "n": 1,
        "messages": [{"role": "system", "content": "be brief"},
                     {"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": "you"}]}],
    })
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "small: hello\nyou"


def test_aliases_resolve_and_models_lists_them(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from router.app import create_app

    with TestClient(create_app(echo_settings(tmp_path, aliases={"my-cheap": "frugal-small"}))) as client:
        assert chat(client, "hi", model="my-cheap").json()["frugal"]["route"] == "small"
        names = [m["id"] for m in client.get("/v1/models").json()["data"]]
    assert names[:4] == ["frugal-auto", "frugal-search", "frugal-small", "frugal-large"] and "my-cheap" in names


def test_healthz_reports_each_tier(client) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert {t: s["ready"] for t, s in body["tiers"].items()} == {"search": True, "small": True, "large": True}


def test_metrics_count_requests_by_tier(client) -> None:
    chat(client, "hi", model="frugal-small")
    text = client.get("/metrics").text
    assert 'frugal_requests_total{status="200",tier="small"} 1.0' in text


def test_large_unavailable_degrades_to_small_and_says_so(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from router.app import create_app

    settings = echo_settings(tmp_path, thresholds={"route.large": 0.0},
                             large={"backend": "echo", "enabled": False})
    with TestClient(create_app(settings)) as client:
        response = chat(client, "prove that sqrt(2) is irrational")
        forced = chat(client, "prove it", model="frugal-large")
        health = client.get("/healthz").json()
    assert response.status_code == 200
    assert response.headers["x-frugal-route"] == "small"
    assert response.headers["x-frugal-degraded"] == "large-unavailable"
    frugal = response.json()["frugal"]
    assert frugal["degraded"] == "large-unavailable"
    assert next((a["tier"], a["reason"]) for a in frugal["attempts"]) == ("large", "unavailable")
    assert forced.status_code == 503 and "FRUGAL_LARGE__MODEL" in forced.json()["error"]["message"]
    assert health["status"] == "degraded" and health["tiers"]["large"]["ready"] is False


def test_large_unavailable_with_error_policy_is_503(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from router.app import create_app

    settings = echo_settings(tmp_path, thresholds={"route.large": 0.0}, on_large_unavailable="error",
                             large={"backend": "echo", "enabled": False})
    with TestClient(create_app(settings)) as client:
        response = chat(client, "prove that sqrt(2) is irrational")
        rows = list(client.app.state.services.ledger.rows())
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "tier_unavailable"
    assert [(r.status, r.error_code) for r in rows] == [(503, "tier_unavailable")]


def test_slow_backend_is_504_and_recorded(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from router.app import create_app

    settings = echo_settings(tmp_path, small={"backend": "echo", "timeout_s": 0.2, "options": {"delay": 2.0}})
    with TestClient(create_app(settings)) as client:
        response = chat(client, "hello", model="frugal-small")
        rows = list(client.app.state.services.ledger.rows())
    assert response.status_code == 504
    assert response.json()["error"]["type"] == "timeout"
    assert rows[0].status == 504


@pytest.mark.parametrize("stream", [False, True])
def test_a_crashing_backend_escalates_or_answers_openai_error_json_and_is_recorded(tmp_path, stream: bool) -> None:
    from fastapi.testclient import TestClient

    from router.app import create_app

    small = {"backend": "echo", "options": {"prefix": "small: ", "crash_when": "BOOM", "name": "echo-small"}}
    settings = echo_settings(tmp_path, small=small, thresholds={"route.large": 1.0, "route.search": 1.0})
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        escalated = chat(client, "BOOM: rewrite this", stream=stream)
        forced = chat(client, "BOOM: rewrite this", model="frugal-small", stream=stream)
        rows = list(client.app.state.services.ledger.rows())
    assert escalated.status_code == 200 and escalated.headers["x-frugal-route"] == "large"
    assert escalated.headers["x-frugal-escalations"] == "1"
    assert forced.status_code == 500
    assert forced.json()["error"]["code"] == "backend_error" and "RuntimeError" in forced.json()["error"]["message"]
    assert sorted((r.status, r.error_code) for r in rows) == [(200, None), (500, "backend_error")]


def test_a_timed_out_attempt_keeps_its_wall_time(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from router.app import create_app

    small = {"backend": "echo", "timeout_s": 0.2, "options": {"delay": 2.0, "name": "echo-small"}}
    settings = echo_settings(tmp_path, small=small, thresholds={"route.large": 1.0, "route.search": 1.0})
    with TestClient(create_app(settings)) as client:
        response = chat(client, "rewrite this politely: give me the report")
    attempts = response.json()["frugal"]["attempts"]
    assert [(a["tier"], a["sufficient"]) for a in attempts] == [("small", False), ("large", True)]
    assert attempts[0]["latency_ms"] >= 190 and attempts[0]["reason"] == "error: backend_timeout"


@pytest.mark.parametrize("large_enabled", [True, False])
def test_search_escalates_straight_to_large_with_its_passages_by_default(tmp_path, large_enabled: bool) -> None:
    from fastapi.testclient import TestClient

    from backends.search.ingest import ingest_paths
    from router.app import create_app
    from tests.backends.search.conftest import write_corpus

    ingest_paths(tmp_path / "data" / "index", [write_corpus(tmp_path)], progress=False)
    question = "Which river flows through Budapest and Vienna in Austria?"  # found, but below the gate
    settings = echo_settings(tmp_path, search={"backend": "tantivy"},
                             large={"backend": "echo", "enabled": large_enabled, "options": {"prefix": "large: "}},
                             thresholds={"route.large": 1.0, "route.search": 0.0})
    with TestClient(create_app(settings)) as client:
        frugal = chat(client, question).json()["frugal"]
    tiers = [(a["tier"], a["sufficient"]) for a in frugal["attempts"]]
    if large_enabled:  # the small tier is skipped; the large tier gets the search tier's passages
        assert tiers == [("search", False), ("large", True)] and frugal["route"] == "large"
    else:  # no large tier: degrade to the small tier, still with the passages
        assert tiers == [("search", False), ("large", False), ("small", True)]
        assert frugal["route"] == "small" and frugal["degraded"] == "large-unavailable"
    assert any(s["title"] == "Danube" for s in frugal["sources"])


def test_search_escalates_to_names_the_valid_tiers(tmp_path) -> None:
    from router.settings import SettingsError

    with pytest.raises(SettingsError, match="small.*large"):
        echo_settings(tmp_path, search_escalates_to="search")



def test_a_search_answer_carries_its_evidence_in_the_frugal_object(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from backends.search.ingest import ingest_paths
    from router.app import create_app
    from tests.backends.search.conftest import write_corpus

    ingest_paths(tmp_path / "data" / "index", [write_corpus(tmp_path)], progress=False)
    settings = echo_settings(tmp_path, search={"backend": "tantivy"})
    with TestClient(create_app(settings)) as client:
        body = chat(client, "When did the Berlin Wall fall?", model="frugal-search").json()
        escalated = chat(client, "rewrite this politely: send it now", model="frugal-small").json()
        estimator = client.app.state.services.estimator
    # no large answer seen yet: the counterfactual writes as much as the search answer returned (chars / 4), not 300
    text = body["choices"][0]["message"]["content"]
    counterfactual = estimator.remote(estimator.config.counterfactual, prompt_tokens=0,
                                      completion_tokens=len(text) // 4 + 1, latency_s=None).energy_wh.value
    assert body["frugal"]["avoided_wh"]["value"] == pytest.approx(counterfactual - body["frugal"]["energy_wh"]["value"])
    frugal = body["frugal"]
    assert frugal["route"] == "search" and frugal["attempts"][0]["sufficient"] is True
    evidence = frugal["evidence"]
    assert evidence["span"] == "9 November 1989"
    assert evidence["sentences"][0] in body["choices"][0]["message"]["content"]
    assert "9 November 1989" in evidence["passage"]["text"] and evidence["passage"]["id"]
    assert "evidence" not in escalated["frugal"]  # only answers quoted from documents carry it
