"""End to end over real HTTP: Frugal with the real small model in process and, as its large tier, a real
llama-cpp-python OpenAI-compatible server reached through litellm (SmolLM2 stands in for a large model)."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from router.settings import load_settings
from tests.conftest import LiveServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def frugal(llama_server: str, tmp_path_factory: pytest.TempPathFactory):
    from router.app import create_app

    data = tmp_path_factory.mktemp("e2e")
    settings = load_settings(
        None, data_dir=data, demo_index=False,
        search={"backend": "tantivy", "enabled": False},
        small={"backend": "llamacpp", "timeout_s": 120},
        large={"backend": "litellm", "model": "openai/smollm2-stand-in", "api_base": llama_server, "timeout_s": 120},
        thresholds={"route.large": 1.0, "route.search": 1.0},
    )
    with LiveServer(create_app(settings)) as server:
        yield server


def test_forced_large_over_real_http_plain_and_streaming(frugal) -> None:
    client = openai.OpenAI(base_url=frugal.url + "/v1", api_key="unused", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="frugal-large", max_tokens=12, messages=[{"role": "user", "content": "Name a colour."}])
    completion = raw.parse()
    assert completion.choices[0].message.content.strip()
    assert completion.usage.completion_tokens > 0
    assert raw.headers["x-frugal-route"] == "large"
    assert float(raw.headers["x-frugal-energy-wh"]) > 0
    frugal_obj = completion.model_extra["frugal"]
    assert [a["tier"] for a in frugal_obj["attempts"]] == ["large"]

    with client.chat.completions.with_streaming_response.create(
        model="frugal-large", max_tokens=12, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Name a fruit."}],
    ) as response:
        assert response.headers["x-frugal-route"] == "large"
        chunks = list(response.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()
    assert chunks[-1].usage.completion_tokens > 0


def test_small_answer_too_short_escalates_to_large_over_real_http(frugal) -> None:
    # Stopping at the first full stop makes the small model's rewrite one sentence, far short of the 76 words
    # its own gate expects for 190 supplied words, on any CPU; the large tier's answers are accepted.
    notice = " ".join(["The office will be closed on Friday.", "Staff must leave by noon.",
                       "Nobody may enter the building after that."] * 10)  # 190 words in short sentences
    response = httpx.post(frugal.url + "/v1/chat/completions", timeout=300, json={
        "model": "frugal-auto", "max_tokens": 200, "stop": ["."], "temperature": 0, "seed": 7,
        "messages": [{"role": "user", "content": "Rewrite this notice politely: " + notice}],
    })
    assert response.status_code == 200, response.text
    body = response.json()["frugal"]
    assert [(a["tier"], a["sufficient"]) for a in body["attempts"]] == [("small", False), ("large", True)]
    assert body["route"] == "large"
    assert response.headers["x-frugal-escalations"] == "1"
    assert body["attempts"][0]["energy_wh"] > 0


def test_small_tier_answers_simple_requests_in_process(frugal) -> None:
    response = httpx.post(frugal.url + "/v1/chat/completions", timeout=300, json={
        "model": "frugal-small", "max_tokens": 24,
        "messages": [{"role": "user", "content": "Say hello to Maria in one short sentence."}],
    })
    assert response.status_code == 200
    body = response.json()
    assert body["choices"][0]["message"]["content"].strip()
    assert body["frugal"]["route"] == "small"
    assert body["frugal"]["energy_wh"]["value"] > 0


def test_stopped_large_server_degrades_or_fails_cleanly(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from router.app import create_app
    from tests.conftest import free_port

    dead = f"http://127.0.0.1:{free_port()}/v1"
    common = {"data_dir": tmp_path, "demo_index": False, "search": {"backend": "tantivy", "enabled": False},
                  "small": {"backend": "echo", "options": {"prefix": "small: "}},
                  "large": {"backend": "litellm", "model": "openai/gone", "api_base": dead, "timeout_s": 5},
                  "thresholds": {"route.large": 0.0}}
    with TestClient(create_app(load_settings(None, **common))) as client:
        degraded = client.post("/v1/chat/completions",
                               json={"model": "frugal-auto", "messages": [{"role": "user", "content": "prove it"}]})
        forced = client.post("/v1/chat/completions",
                             json={"model": "frugal-large", "messages": [{"role": "user", "content": "prove it"}]})
    assert degraded.status_code == 200 and degraded.headers["x-frugal-degraded"] == "large-unavailable"
    assert forced.status_code == 503
