"""Bad input gets OpenAI-style error JSON with the right 4xx code, never a 500, and nothing is lost."""

from __future__ import annotations

import pytest

from tests.conftest import echo_settings

OK_MESSAGES = [{"role": "user", "content": "hello"}]

CASES = [
    # (name, raw body or JSON, expected status, expected param or None)
    ("malformed json", b'{"model": "frugal-auto", "messages": [', 400, None),
    ("not an object", b"[1, 2, 3]", 400, None),
    ("not utf-8", b'\xff\xfe{"model"', 400, None),
    ("empty body", b"", 400, None),
    ("missing model", {"messages": OK_MESSAGES}, 422, "model"),
    ("missing messages", {"model": "frugal-auto"}, 422, "messages"),
    ("messages wrong type", {"model": "frugal-auto", "messages": "hello"}, 422, "messages"),
    ("model wrong type", {"model": 7, "messages": OK_MESSAGES}, 422, "model"),
    ("empty messages", {"model": "frugal-auto", "messages": []}, 400, "messages"),
    ("unknown role", {"model": "frugal-auto", "messages": [{"role": "wizard", "content": "hi"}]}, 422,
     "messages.0.role"),
    ("content wrong type", {"model": "frugal-auto", "messages": [{"role": "user", "content": 5}]}, 422, None),
    ("image part no tier honours", {"model": "frugal-auto", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://x"}}]}]}, 400, "messages"),
    ("unknown part type", {"model": "frugal-auto", "messages": [{"role": "user", "content": [
        {"type": "hologram", "text": "hi"}]}]}, 400, "messages.0.content.0.type"),
    ("text part without text", {"model": "frugal-auto", "messages": [{"role": "user", "content": [
        {"type": "text"}]}]}, 400, "messages.0.content.0.text"),
    ("no user message", {"model": "frugal-auto", "messages": [{"role": "system", "content": "be nice"}]}, 400,
     "messages"),
    ("blank user message", {"model": "frugal-auto", "messages": [{"role": "user", "content": "   "}]}, 400,
     "messages"),
    ("temperature out of range", {"model": "frugal-auto", "messages": OK_MESSAGES, "temperature": 9}, 422,
     "temperature"),
    ("max_tokens zero", {"model": "frugal-auto", "messages": OK_MESSAGES, "max_tokens": 0}, 422, "max_tokens"),
    ("max_tokens over cap", {"model": "frugal-auto", "messages": OK_MESSAGES, "max_tokens": 10**6}, 400,
     "max_tokens"),
    ("n=2", {"model": "frugal-auto", "messages": OK_MESSAGES, "n": 2}, 400, "n"),
    ("unknown model", {"model": "gpt-17", "messages": OK_MESSAGES}, 404, "model"),
    ("stream wrong type", {"model": "frugal-auto", "messages": OK_MESSAGES, "stream": "yes please"}, 422, "stream"),
    ("streaming unknown model", {"model": "nope", "stream": True, "messages": OK_MESSAGES}, 404, "model"),
    ("streaming n=2", {"model": "frugal-auto", "stream": True, "n": 2, "messages": OK_MESSAGES}, 400, "n"),
    ("max_completion_tokens over cap", {"model": "frugal-auto", "messages": OK_MESSAGES,
                                        "max_completion_tokens": 10**6}, 400, "max_completion_tokens"),
    ("integer beyond the digit limit", b'{"model": "frugal-auto", "max_tokens": ' + b"9" * 5000 + b"}", 400, None),
    ("deeply nested json", b'{"model": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, None),
    ("seed beyond int64", {"model": "frugal-auto", "messages": OK_MESSAGES, "seed": 2**70}, 422, "seed"),
    # issue 25 (9): JSON types are not coerced (true was max_tokens 1, "false" was a boolean)
    ("max_tokens true", {"model": "frugal-auto", "messages": OK_MESSAGES, "max_tokens": True}, 422, "max_tokens"),
    ("stream as a string", {"model": "frugal-auto", "messages": OK_MESSAGES, "stream": "false"}, 422, "stream"),
    ("n as a boolean", {"model": "frugal-auto", "messages": OK_MESSAGES, "n": True}, 422, "n"),
    ("seed as a string", {"model": "frugal-auto", "messages": OK_MESSAGES, "seed": "7"}, 422, "seed"),
    ("temperature as a string", {"model": "frugal-auto", "messages": OK_MESSAGES, "temperature": "0.5"}, 422,
     "temperature"),
]


@pytest.mark.parametrize(("name", "body", "status", "param"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_matrix(client, name: str, body: object, status: int, param: str | None) -> None:
    if isinstance(body, bytes):
        response = client.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    else:
        response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if param is not None:
        assert error["param"] == param


def test_unknown_model_lists_the_valid_names(client) -> None:
    error = client.post("/v1/chat/completions", json={"model": "gpt-17", "messages": OK_MESSAGES}).json()["error"]
    assert error["code"] == "model_not_found"
    for name in ("frugal-auto", "frugal-search", "frugal-small", "frugal-large"):
        assert name in error["message"]


def test_huge_body_is_413(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from router.app import create_app

    settings = echo_settings(tmp_path, limits={"max_body_bytes": 4096})
    with TestClient(create_app(settings)) as client:
        big = {"model": "frugal-auto", "messages": [{"role": "user", "content": "x" * 10_000}]}
        response = client.post("/v1/chat/completions", json=big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_too_many_or_too_long_messages_are_400(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from router.app import create_app

    settings = echo_settings(tmp_path, limits={"max_messages": 3, "max_message_chars": 50})
    with TestClient(create_app(settings)) as client:
        many = client.post("/v1/chat/completions", json={"model": "frugal-auto", "messages": OK_MESSAGES * 4})
        long = client.post("/v1/chat/completions",
                           json={"model": "frugal-auto", "messages": [{"role": "user", "content": "y" * 51}]})
    assert many.status_code == 400 and many.json()["error"]["param"] == "messages"
    assert long.status_code == 400 and long.json()["error"]["param"] == "messages.0.content"


def test_client_keys_are_checked_when_configured(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from router.app import create_app
    from router.auth import hash_key

    settings = echo_settings(tmp_path, auth={"client_key_hashes": [hash_key("sk-good")]})
    with TestClient(create_app(settings)) as client:
        body = {"model": "frugal-small", "messages": OK_MESSAGES}
        missing = client.post("/v1/chat/completions", json=body)
        wrong = client.post("/v1/chat/completions", json=body, headers={"authorization": "Bearer sk-bad"})
        good = client.post("/v1/chat/completions", json=body, headers={"authorization": "Bearer sk-good"})
        rows = list(client.app.state.services.ledger.rows())
    assert missing.status_code == wrong.status_code == 401
    assert missing.json()["error"]["type"] == "authentication_error"
    assert good.status_code == 200
    assert [r.client_key_id for r in rows] == [hash_key("sk-good")[:12]]


def test_unknown_path_and_method_are_openai_shaped(client) -> None:
    missing = client.get("/v1/nothing-here")
    wrong_method = client.get("/v1/chat/completions")
    assert missing.status_code == 404 and "error" in missing.json()
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()
