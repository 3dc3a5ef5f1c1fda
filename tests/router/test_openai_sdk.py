"""The official openai package, unmodified, against a real Frugal server on 127.0.0.1."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import LiveServer


@pytest.fixture
def live(settings):
    from router.app import create_app

    with LiveServer(create_app(settings)) as server:
        yield server


def test_sdk_non_streaming_gets_answer_route_and_energy_headers(live) -> None:
    client = openai.OpenAI(base_url=live.url + "/v1", api_key="unused", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="frugal-auto", messages=[{"role": "user", "content": "What is the capital of France?"}])
    completion = raw.parse()
    assert completion.choices[0].message.content.endswith("What is the capital of France?")
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert raw.headers["x-frugal-route"] in {"search", "small", "large"}
    assert float(raw.headers["x-frugal-energy-wh"]) > 0
    assert completion.model_extra["frugal"]["route"] == raw.headers["x-frugal-route"]


def test_sdk_streaming_gets_chunks_and_headers(live) -> None:
    client = openai.OpenAI(base_url=live.url + "/v1", api_key="unused", max_retries=0)
    with client.chat.completions.with_streaming_response.create(
        model="frugal-small", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "say hi to Ana"}],
    ) as response:
        assert response.headers["x-frugal-route"] == "small"
        assert float(response.headers["x-frugal-energy-wh"]) >= 0
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "small: say hi to Ana"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_sdk_sees_errors_as_its_own_exceptions(live) -> None:
    client = openai.OpenAI(base_url=live.url + "/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError) as error:
        client.chat.completions.create(model="gpt-17", messages=[{"role": "user", "content": "hi"}])
    assert "frugal-auto" in str(error.value)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="frugal-auto", n=2, messages=[{"role": "user", "content": "hi"}])
    models = [m.id for m in client.models.list()]
    assert "frugal-auto" in models
