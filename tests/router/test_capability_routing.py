"""Capability-aware routing and conversation stickiness, with echo tiers that declare what they honour.

The echo tiers make the routing rule visible and fast; tests/router/test_capabilities_e2e.py checks the same
promises with a real llama-cpp-python server upstream, the real small model and the official SDK.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient

from router.app import create_app
from router.core import Message
from router.core.capabilities import request_needs
from tests.conftest import echo_settings

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
JSON_OBJECT = {"type": "json_object"}


def tiers(search: list[str] | None = None, small: list[str] | None = None,
          large: list[str] | None = None) -> dict[str, object]:
    """Echo tiers that claim the given capabilities."""
    return {
        "search": {"backend": "echo", "options": {"prefix": "search: ", "name": "echo-search",
                                                  "capabilities": search or []}},
        "small": {"backend": "echo", "options": {"prefix": "small: ", "name": "echo-small",
                                                 "capabilities": small or []}},
        "large": {"backend": "echo", "options": {"prefix": "large: ", "name": "echo-large",
                                                 "capabilities": large or []}},
    }


@pytest.fixture
def everything_to_search(tmp_path):
    """Thresholds that send every automatic request to the search tier first; only large honours tools."""
    settings = echo_settings(tmp_path, thresholds={"route.large": 1.0, "route.search": 0.0},
                             **tiers(small=["json_object", "json_schema"], large=["tools", "logprobs", "json_object"]))
    with TestClient(create_app(settings)) as client:
        yield client


def post(client, messages, model="frugal-auto", **extra):
    return client.post("/v1/chat/completions", json={"model": model, "messages": messages, **extra})


def user(text: str) -> list[dict[str, object]]:
    return [{"role": "user", "content": text}]


def test_what_a_request_needs_is_read_from_its_fields_and_messages() -> None:
    assert request_needs({"messages": user("hi")}) == frozenset()
    assert request_needs({"tools": TOOLS, "messages": user("hi")}) == {"tools"}
    assert request_needs({"tools": TOOLS, "tool_choice": "none", "messages": user("hi")}) == frozenset()
    assert request_needs({"response_format": {"type": "json_schema", "json_schema": {}}}) == {"json_schema"}
    assert request_needs({"response_format": {"type": "text"}}) == frozenset()
    assert request_needs({"logprobs": True}) == {"logprobs"} == request_needs({"top_logprobs": 2})
    assert request_needs({"messages": [{"role": "tool", "tool_call_id": "c", "content": "21C"}]}) == {"tools"}
    assert request_needs({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": "data:,"}}]}]}) == {
        "images"}


def test_tools_skip_the_tiers_that_cannot_call_them(everything_to_search) -> None:
    plain = post(everything_to_search, user("What is the weather in Paris?"))
    tools = post(everything_to_search, user("What is the weather in Paris?"), tools=TOOLS)
    assert plain.json()["frugal"]["route"] == "search"
    body = tools.json()
    assert tools.status_code == 200 and body["frugal"]["route"] == "large"
    assert body["frugal"]["needs"] == ["tools"]
    assert "floor:large" in body["frugal"]["flags"]
    assert body["frugal"]["decision_reason"] == "the request needs tools, which only the large tier honours"
    assert [a["tier"] for a in body["frugal"]["attempts"]] == ["large"]  # never tried, so never answered, lower


def test_json_mode_goes_to_the_cheapest_tier_that_enforces_it(everything_to_search) -> None:
    response = post(everything_to_search, user("List two colours as JSON."), response_format=JSON_OBJECT)
    frugal = response.json()["frugal"]
    assert frugal["route"] == "small" and frugal["needs"] == ["json_object"]
    assert "which the search tier cannot honour: sent to the small tier" in frugal["decision_reason"]
    assert frugal["scores"] is not None  # two tiers could: the classifier still chose between them


def test_a_tool_result_turn_goes_to_a_tier_that_carries_tools(everything_to_search) -> None:
    messages = [*user("What is the weather in Paris?"),
                {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "What is the capital of France?"}]
    response = post(everything_to_search, messages, tools=TOOLS)
    assert response.status_code == 200
    # the tool's text is not the user's question: the echo answers the user turn, on the large tier
    assert response.json()["choices"][0]["message"]["content"] == "large: What is the weather in Paris?"
    assert response.json()["frugal"]["route"] == "large"


@pytest.mark.parametrize(("model", "extra", "missing", "param"), [
    ("frugal-small", {"tools": TOOLS}, "tools", "tools"),
    ("frugal-search", {"response_format": JSON_OBJECT}, "json_object", "response_format"),
    ("frugal-small", {"logprobs": True}, "logprobs", "logprobs"),
])
def test_a_forced_tier_that_cannot_honour_the_request_is_a_400_naming_what_and_how(
        everything_to_search, model, extra, missing, param) -> None:
    response = post(everything_to_search, user("hello"), model=model, **extra)
    error = response.json()["error"]
    assert response.status_code == 400 and error["code"] == "capability_not_supported"
    assert error["param"] == param and f"cannot honour {missing}" in error["message"]
    assert "frugal-auto" in error["message"]


def test_no_configured_tier_honouring_a_request_is_a_400_with_the_setting_to_change(tmp_path) -> None:
    settings = echo_settings(tmp_path, **tiers())
    with TestClient(create_app(settings)) as client:
        response = post(client, user("What is the weather in Paris?"), tools=TOOLS)
        image = post(client, [{"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}])
        rows = list(client.app.state.services.ledger.rows())
    error = response.json()["error"]
    assert response.status_code == 400 and error["code"] == "capability_not_supported" and error["param"] == "tools"
    assert "large.options.capabilities" in error["message"] and "large lacks tools" in error["message"]
    assert image.status_code == 400 and "images" in image.json()["error"]["message"]
    assert [r.status for r in rows] == [400, 400]  # refused, and recorded as refused


def test_images_go_to_a_tier_that_declares_them(tmp_path) -> None:
    settings = echo_settings(tmp_path, thresholds={"route.large": 1.0, "route.search": 0.0},
                             **tiers(large=["images"]))
    with TestClient(create_app(settings)) as client:
        response = post(client, [{"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}])
        image_only = post(client, [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}])
    assert response.status_code == 200 and response.json()["frugal"]["route"] == "large"
    assert "only the large tier honours" in response.json()["frugal"]["decision_reason"]
    assert image_only.status_code == 200 and image_only.json()["frugal"]["route"] == "large"


def test_when_the_only_capable_tier_is_down_the_answer_is_a_503_not_a_degraded_200(tmp_path) -> None:
    settings = echo_settings(tmp_path, thresholds={"route.large": 1.0, "route.search": 0.0},
                             **tiers(large=["tools"]))
    settings.large.options["ready_when_exists"] = str(tmp_path / "never")  # loads for ever: never ready
    with TestClient(create_app(settings)) as client:
        tools = post(client, user("What is the weather in Paris?"), tools=TOOLS)
        plain = post(client, user("What is the weather in Paris?"))
    assert tools.status_code == 503 and tools.json()["error"]["code"] == "capable_tier_unavailable"
    assert "tools" in tools.json()["error"]["message"]
    assert plain.status_code == 200  # a request that needs nothing special is answered as before


def test_fields_a_local_tier_does_not_apply_are_listed_not_silently_dropped(everything_to_search) -> None:
    response = post(everything_to_search, user("What is the capital of France?"), top_k=5, metadata={"a": "b"},
                    logit_bias={"50256": -100})
    assert response.json()["frugal"]["ignored_params"] == ["logit_bias", "top_k"]
    assert "ignored_params" not in post(everything_to_search, user("What is the capital of France?")).json()["frugal"]


def test_unsupported_endpoints_are_openai_shaped_404s_naming_the_supported_ones(everything_to_search) -> None:
    for method, path in (("post", "/v1/embeddings"), ("post", "/v1/completions"), ("post", "/v1/responses")):
        response = getattr(everything_to_search, method)(path, json={"model": "frugal-auto", "input": "hi"})
        error = response.json()["error"]
        assert response.status_code == 404 and error["code"] == "unknown_url"
        assert path in error["message"] and "POST /v1/chat/completions" in error["message"]
    wrong = everything_to_search.get("/v1/chat/completions")
    assert wrong.status_code == 405 and "POST /v1/chat/completions" in wrong.json()["error"]["message"]


# -- conversations ---------------------------------------------------------------------------------


@dataclass
class Scripted:
    """A classifier whose scores are set per question text (the last user turn decides, as the real one)."""

    large_when: set[str] = field(default_factory=set)
    follow_ups: set[str] = field(default_factory=set)
    variant: str = "scripted"

    def predict(self, messages: list[Message]):
        text = next(m.content for m in reversed(messages) if m.role == "user")

        @dataclass
        class Prediction:
            scores: dict[str, float]
            follow_up: bool

        if text in self.large_when:
            return Prediction({"search": 0.0, "small": 0.0, "large": 1.0}, False)
        return Prediction({"search": 0.0, "small": 1.0, "large": 0.0}, text in self.follow_ups)


@pytest.fixture
def scripted(tmp_path):
    settings = echo_settings(tmp_path, thresholds={"route.large": 0.5, "route.search": 0.5})
    with TestClient(create_app(settings)) as client:
        client.app.state.services.dispatcher.classifier = Scripted(
            large_when={"Prove that there are infinitely many primes."}, follow_ups={"commit it"})
        yield client


def test_a_turn_after_a_large_answer_stays_on_the_large_tier(scripted) -> None:
    first = post(scripted, user("Prove that there are infinitely many primes."))
    assert first.json()["frugal"]["route"] == "large"
    answer = first.json()["choices"][0]["message"]["content"]
    for follow_up in ("commit it", "Rewrite your previous response. Start every sentence with the letter A."):
        second = post(scripted, [*user("Prove that there are infinitely many primes."),
                                 {"role": "assistant", "content": answer}, *user(follow_up)])
        frugal = second.json()["frugal"]
        assert frugal["route"] == "large", follow_up
        assert "previous answer needed the large tier" in frugal["decision_reason"]
        assert "floor:large" in frugal["flags"]


def test_a_turn_after_a_small_answer_may_stay_small(scripted) -> None:
    first = post(scripted, user("Say hello to Ana."))
    assert first.json()["frugal"]["route"] == "small"
    second = post(scripted, [*user("Say hello to Ana."),
                             {"role": "assistant", "content": first.json()["choices"][0]["message"]["content"]},
                             *user("commit it")])
    assert second.json()["frugal"]["route"] == "small"


def test_a_follow_up_to_an_answer_this_process_did_not_give_gets_its_earlier_questions_tier(scripted) -> None:
    conversation = [*user("Prove that there are infinitely many primes."),
                    {"role": "assistant", "content": "An answer another worker gave."}]
    follow_up = post(scripted, [*conversation, *user("commit it")])
    assert follow_up.json()["frugal"]["route"] == "large"
    assert "follow-up whose earlier question goes to the large tier" in follow_up.json()["frugal"]["decision_reason"]
    new_question = post(scripted, [*conversation, *user("Say hello to Ana.")])  # not a follow-up: routed on its own
    assert new_question.json()["frugal"]["route"] == "small"


def test_a_degraded_answer_is_remembered_as_needing_the_large_tier(tmp_path) -> None:
    settings = echo_settings(tmp_path, thresholds={"route.large": 0.5, "route.search": 0.5},
                             large={"backend": "echo", "options": {"ready_when_exists": str(tmp_path / "later")}})
    with TestClient(create_app(settings)) as client:
        client.app.state.services.dispatcher.classifier = Scripted(
            large_when={"Prove that there are infinitely many primes."})
        first = post(client, user("Prove that there are infinitely many primes."))
        assert first.json()["frugal"]["degraded"] == "large-unavailable"
        (tmp_path / "later").touch()
        deadline = time.monotonic() + 30
        while not client.get("/healthz").json()["tiers"]["large"]["ready"]:
            assert time.monotonic() < deadline, "the large tier never became ready"
            time.sleep(0.05)
        second = post(client, [*user("Prove that there are infinitely many primes."),
                               {"role": "assistant", "content": first.json()["choices"][0]["message"]["content"]},
                               *user("Now shorter.")])
    assert second.json()["frugal"]["route"] == "large"


def test_stickiness_can_be_turned_off(tmp_path) -> None:
    settings = echo_settings(tmp_path, thresholds={"route.large": 0.5, "route.search": 0.5},
                             policy={"sticky_conversations": False})
    with TestClient(create_app(settings)) as client:
        client.app.state.services.dispatcher.classifier = Scripted(
            large_when={"Prove that there are infinitely many primes."}, follow_ups={"commit it"})
        first = post(client, user("Prove that there are infinitely many primes."))
        second = post(client, [*user("Prove that there are infinitely many primes."),
                               {"role": "assistant", "content": first.json()["choices"][0]["message"]["content"]},
                               *user("commit it")])
    assert second.json()["frugal"]["route"] == "small"


def test_the_answer_memory_is_bounded_and_keyed_on_the_text_not_its_spacing() -> None:
    from router.stickiness import AnswerMemory

    memory = AnswerMemory(capacity=2)
    memory.remember("first  answer\n", "large")
    memory.remember("second answer", "small")
    assert memory.tier_of("first answer") == "large"  # whitespace as a client may re-send it
    memory.remember("third answer", "small")  # evicts the least recently used: "second"
    assert memory.tier_of("second answer") is None and memory.tier_of("first answer") == "large"
    assert len(memory) == 2
    memory.remember("   ", "large")
    assert len(memory) == 2
