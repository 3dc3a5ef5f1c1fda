"""Tools, JSON mode, logprobs and conversations over real HTTP, with the official SDK and real parts.

Frugal runs with the demo search index, the real small model in process and, as its large tier, a real
llama-cpp-python OpenAI-compatible server (SmolLM2 standing in for a large model). Thresholds send every
automatic request to the search tier first, so that any answer from a higher tier was put there by what the
request needs or by its conversation, not by the classifier. llama-cpp-python's server takes
``response_format`` ``json_object`` (with an optional schema) but not ``json_schema``; the large tier's
declared capabilities say so, and a ``json_schema`` request is enforced by the small tier's grammar.
"""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest

from router.settings import load_settings
from tests.conftest import LiveServer
from tests.fixtures.llama_server import FaultServer

pytestmark = pytest.mark.slow

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather now in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
FORCE_WEATHER = {"type": "function", "function": {"name": "get_weather"}}
PERSON = {"type": "json_schema", "json_schema": {"name": "person", "schema": {
    "type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"], "additionalProperties": False}}}
MT_BENCH = Path(__file__).resolve().parents[3] / "shared" / "data" / "mt_bench" / "question.jsonl"


def frugal_settings(data: Path, large: dict[str, object], **overrides: object):
    return load_settings(
        None, data_dir=data, small={"backend": "llamacpp", "timeout_s": 120},
        large={"backend": "litellm", "timeout_s": 120, **large},
        thresholds={"route.large": 1.0, "route.search": 0.0}, **overrides)


@pytest.fixture(scope="module")
def frugal(llama_server: str, tmp_path_factory: pytest.TempPathFactory):
    from router.app import create_app

    settings = frugal_settings(tmp_path_factory.mktemp("caps"), {
        "model": "openai/smollm2-stand-in", "api_base": llama_server,
        "options": {"capabilities": ["tools", "json_object", "logprobs"]}})
    with LiveServer(create_app(settings)) as server:
        yield server


@pytest.fixture(scope="module")
def sdk(frugal) -> openai.OpenAI:
    return openai.OpenAI(base_url=frugal.url + "/v1", api_key="unused", max_retries=0, timeout=300)


def user(text: str) -> list[dict[str, object]]:
    return [{"role": "user", "content": text}]


def test_a_tool_call_round_trips_plain_and_streamed(sdk) -> None:
    raw = sdk.chat.completions.with_raw_response.create(
        model="frugal-auto", messages=user("What is the weather in Paris?"), tools=TOOLS, tool_choice=FORCE_WEATHER,
        max_tokens=40)
    completion = raw.parse()
    choice = completion.choices[0]
    assert raw.headers["x-frugal-route"] == "large"
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather" and call.id
    assert isinstance(json.loads(call.function.arguments), dict)
    assert completion.model_extra["frugal"]["needs"] == ["tools"]

    names, arguments, finish = set(), "", None
    for chunk in sdk.chat.completions.create(
            model="frugal-auto", messages=user("What is the weather in Rome?"), tools=TOOLS,
            tool_choice=FORCE_WEATHER, max_tokens=40, stream=True):
        for streamed in chunk.choices:
            for delta in streamed.delta.tool_calls or []:
                assert delta.index == 0
                if delta.function.name:
                    names.add(delta.function.name)
                arguments += delta.function.arguments or ""
            finish = streamed.finish_reason or finish
    assert names == {"get_weather"} and finish == "tool_calls"
    assert isinstance(json.loads(arguments), dict)


def test_a_multi_turn_tool_conversation_is_answered_by_the_tier_that_holds_the_tools(sdk) -> None:
    messages = [*user("What is the weather in Paris?"),
                {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function", "function": {
                    "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21 degrees Celsius."}]
    raw = sdk.chat.completions.with_raw_response.create(model="frugal-auto", messages=messages, tools=TOOLS,
                                                        max_tokens=24)
    assert raw.headers["x-frugal-route"] == "large"
    assert raw.parse().choices[0].message.content.strip()


def test_json_mode_and_a_json_schema_come_back_as_json(sdk) -> None:
    plain = sdk.chat.completions.create(
        model="frugal-auto", messages=user("Give the name and the country of one famous city as JSON."),
        response_format={"type": "json_object"}, max_tokens=200)
    assert plain.model_extra["frugal"]["route"] in {"small", "large"}  # never search: it cannot enforce JSON
    json.loads(plain.choices[0].message.content)

    person = sdk.chat.completions.create(model="frugal-auto", messages=user("Describe a person."),
                                         response_format=PERSON, max_tokens=200)
    assert person.model_extra["frugal"]["route"] == "small"  # the only tier that enforces a JSON schema here
    value = json.loads(person.choices[0].message.content)
    assert set(value) == {"name", "age"} and isinstance(value["age"], int)

    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(model="frugal-large", messages=user("Describe a person."), response_format=PERSON)
    assert refused.value.code == "capability_not_supported" and "json_schema" in refused.value.message


def test_logprobs_come_back_from_the_tier_that_computes_them(sdk) -> None:
    completion = sdk.chat.completions.create(model="frugal-auto", messages=user("Say hello."), logprobs=True,
                                             top_logprobs=2, max_tokens=3, temperature=0)
    assert completion.model_extra["frugal"]["route"] == "large"
    tokens = completion.choices[0].logprobs.content
    # llama-cpp-python's server lists the top 2 and, when it is not among them, the sampled token, keyed by their
    # text: tokens that decode to the same text (a partial UTF-8 byte decodes to '') collapse into one entry
    assert tokens and all(token.top_logprobs and token.logprob <= 0 for token in tokens)
    assert all(len(token.top_logprobs) >= 2 for token in tokens if token.token)

    streamed = [chunk.choices[0].logprobs for chunk in sdk.chat.completions.create(
        model="frugal-auto", messages=user("Say hello."), logprobs=True, top_logprobs=1, max_tokens=3, stream=True,
        temperature=0)  # sampled, three tokens can all be partial UTF-8 bytes: no text, which the large tier refuses
        if chunk.choices and chunk.choices[0].logprobs]
    assert streamed and all(entry.content for entry in streamed)


def test_what_no_tier_can_honour_is_refused_with_the_capability_and_the_setting(sdk) -> None:
    with pytest.raises(openai.BadRequestError) as forced:
        sdk.chat.completions.create(model="frugal-small", messages=user("What is the weather in Paris?"), tools=TOOLS)
    assert forced.value.code == "capability_not_supported" and "tools" in forced.value.message
    with pytest.raises(openai.BadRequestError) as image:
        sdk.chat.completions.create(model="frugal-auto", messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}])
    assert "images" in image.value.message and "large.options.capabilities" in image.value.message
    with pytest.raises(openai.NotFoundError) as embeddings:
        sdk.embeddings.create(model="frugal-auto", input="hello")
    assert "POST /v1/chat/completions" in embeddings.value.message


def test_every_field_reaches_the_upstream_unchanged(tmp_path: Path) -> None:
    from router.app import create_app

    upstream = FaultServer()
    try:
        settings = frugal_settings(tmp_path, {"model": "openai/fault", "api_base": upstream.api_base("ok")})
        messages = [{"role": "system", "content": "Be brief."},
                    {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}], "name": "ana"},
                    {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "Sunny."}]
        fields = {"tools": TOOLS, "tool_choice": "auto", "parallel_tool_calls": False, "seed": 7, "stop": ["\n\n"],
                  "user": "u-1", "max_completion_tokens": 9, "temperature": 0.3, "top_p": 0.9,
                  "frequency_penalty": 0.1, "logprobs": True, "top_logprobs": 2}
        with LiveServer(create_app(settings)) as server:
            sdk = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
            completion = sdk.chat.completions.create(model="frugal-auto", messages=messages,
                                                     extra_body={"x_vendor_option": {"k": [1, 2]}}, **fields)
            sdk.chat.completions.create(model="frugal-large", messages=user("hi"), stream=True,
                                        response_format={"type": "json_object"}).close()
        assert completion.model_extra["frugal"]["route"] == "large"
        assert completion.usage.prompt_tokens_details.cached_tokens == 2  # the upstream's usage details, unchanged
        sent = upstream.requests[0]["payload"]
        assert sent["messages"] == messages
        assert {name: sent.get(name) for name in fields} == fields
        assert sent["x_vendor_option"] == {"k": [1, 2]} and sent["model"] == "fault"
        assert upstream.requests[1]["payload"]["response_format"] == {"type": "json_object"}
    finally:
        upstream.stop()


def mt_bench_second_turns() -> list[tuple[str, str, str]]:
    """One MT-Bench conversation per category: (category, first turn, second turn)."""
    if not MT_BENCH.exists():
        pytest.skip("../shared/data is not beside this checkout")
    seen: dict[str, tuple[str, str, str]] = {}
    for line in MT_BENCH.open(encoding="utf-8"):
        row = json.loads(line)
        seen.setdefault(row["category"], (row["category"], row["turns"][0], row["turns"][1]))
    return list(seen.values())


def test_mt_bench_second_turns_stay_on_the_large_tier_that_answered_the_first(sdk) -> None:
    routes = {}
    for category, first, second in mt_bench_second_turns():
        answer = sdk.chat.completions.create(model="frugal-large", messages=user(first), max_tokens=8)
        text = answer.choices[0].message.content
        follow_up = sdk.chat.completions.create(
            model="frugal-auto", max_tokens=4,
            messages=[*user(first), {"role": "assistant", "content": text}, *user(second)])
        routes[category] = follow_up.model_extra["frugal"]["route"]
    assert routes == dict.fromkeys(routes, "large")
    assert len(routes) == 8


def test_without_stickiness_the_same_second_turn_is_routed_on_its_own(llama_server: str, tmp_path: Path) -> None:
    from router.app import create_app

    settings = frugal_settings(tmp_path, {"model": "openai/smollm2-stand-in", "api_base": llama_server},
                               policy={"sticky_conversations": False})
    category, first, second = mt_bench_second_turns()[0]
    with LiveServer(create_app(settings)) as server:
        sdk = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=300)
        text = sdk.chat.completions.create(model="frugal-large", messages=user(first),
                                           max_tokens=8).choices[0].message.content
        follow_up = sdk.chat.completions.create(
            model="frugal-auto", max_tokens=4,
            messages=[*user(first), {"role": "assistant", "content": text}, *user(second)])
    assert follow_up.model_extra["frugal"]["attempts"][0]["tier"] != "large", category
