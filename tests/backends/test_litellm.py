"""The litellm tier over real HTTP: llama-cpp-python's server as a stand-in large model, and a fault server.

Fixtures ``llama_server`` and ``fault_server`` come from ``tests/fixtures/llama_server.py``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from backends.config import TierConfig
from backends.litellm_backend import LiteLLMBackend, build
from backends.llamacpp import build as build_llamacpp
from backends.openai_fast import fast_route
from router.core import Completion, CompletionRequest, Message, TextDelta
from router.core.errors import BackendTimeoutError, RateLimitError, TierUnavailableError, UpstreamError
from tests.fixtures.llama_server import FAULT_ANSWER, SLOW_SECONDS, FaultServer, free_port

LOCAL_MODEL = "openai/smollm2-135m"


def large(tier: str = "large", *, fast: bool = True, **config: object) -> LiteLLMBackend:
    options = {**dict(config.pop("options", {}) or {}), "fast_path": fast}  # type: ignore[call-overload]
    return build(TierConfig(backend="litellm", options=options, **config), tier=tier,  # type: ignore[arg-type]
                 data_dir=Path("."))


#: Every behaviour below holds on both paths: the fast path (OpenAI-compatible targets called directly) and litellm.
PATHS = pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "litellm"])


def ask(text: str = "Say hello.", **kwargs: object) -> CompletionRequest:
    kwargs.setdefault("max_tokens", 12)
    return CompletionRequest(messages=[Message("user", text)], **kwargs)  # type: ignore[arg-type]


def run(coro):
    return asyncio.run(coro)


async def collect(backend: LiteLLMBackend, request: CompletionRequest) -> list[object]:
    return [event async for event in backend.stream(request)]


# -- configuration and health (no server needed) ----------------------------------------------

def test_an_unconfigured_large_tier_says_how_to_configure_it() -> None:
    backend = large()
    health = run(backend.health())
    assert not health.ready and "FRUGAL_LARGE__MODEL" in health.detail and "FRUGAL_LARGE__API_BASE" in health.detail
    with pytest.raises(TierUnavailableError, match="FRUGAL_LARGE__MODEL") as info:
        run(backend.complete(ask()))
    assert info.value.status_code == 503


def test_options_are_validated_and_fallbacks_need_a_primary() -> None:
    with pytest.raises(ValueError, match="fallback"):
        large(model="openai/x", options={"fallback": ["openai/y"]})
    with pytest.raises(ValueError, match="primary model"):
        large(options={"fallbacks": ["openai/y"]})
    backend = large(model="openai/x", options={"fallbacks": ["anthropic/y", {"model": "openai/z", "api_base": "http://h/v1"}]})
    assert [t.model for t in backend.targets] == ["openai/x", "anthropic/y", "openai/z"]


@PATHS
def test_a_missing_key_env_var_is_named_and_the_key_never_leaks(fast: bool, fault_server: FaultServer,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    backend = large(fast=fast, model=LOCAL_MODEL, api_base=fault_server.api_base("401"), api_key_env="FRUGAL_TEST_KEY")
    monkeypatch.delenv("FRUGAL_TEST_KEY", raising=False)
    assert "FRUGAL_TEST_KEY" in run(backend.health()).detail
    with pytest.raises(UpstreamError, match="FRUGAL_TEST_KEY"):
        run(backend.complete(ask()))
    monkeypatch.setenv("FRUGAL_TEST_KEY", "sk-very-secret-123")
    with pytest.raises(UpstreamError, match="api_key_env") as info:
        run(backend.complete(ask()))
    assert "sk-very-secret-123" not in info.value.message and "***" in info.value.message
    assert info.value.__cause__ is None  # the raw provider error (which echoes the key) is not chained
    sent = fault_server.requests[-1]["payload"]
    assert isinstance(sent, dict) and sent["model"] == "smollm2-135m"


@PATHS
def test_tokens_are_the_providers_usage_or_counted_and_flagged(fast: bool, fault_server: FaultServer) -> None:
    reported = run(large(fast=fast, model=LOCAL_MODEL, api_base=fault_server.api_base("ok")).complete(ask()))
    assert (reported.prompt_tokens, reported.completion_tokens, reported.flags) == (5, 4, [])
    counted = run(large(fast=fast, model=LOCAL_MODEL, api_base=fault_server.api_base("nousage")).complete(ask()))
    assert counted.flags == ["tokens_estimated"]
    assert counted.prompt_tokens > 0 and counted.completion_tokens > 0  # not the 0 that zeroed the energy


def test_a_key_given_through_extra_params_never_leaks(fault_server: FaultServer) -> None:
    backend = large(model=LOCAL_MODEL, api_base=fault_server.api_base("401"),
                    options={"extra_params": {"api_key": "opaque-extra-secret-4711"}})
    with pytest.raises(UpstreamError) as info:
        run(backend.complete(ask()))
    assert "opaque-extra-secret-4711" not in info.value.message and "***" in info.value.message


# -- the fault server: each failure maps to its documented error ------------------------------

@PATHS
@pytest.mark.parametrize(
    ("mode", "error", "status"),
    [
        ("429", RateLimitError, 429),
        ("500", UpstreamError, 502),
        ("503", TierUnavailableError, 503),
        ("404", UpstreamError, 502),
        ("malformed", UpstreamError, 502),
    ],
)
def test_provider_failures_map_onto_the_error_tree(fast: bool, fault_server: FaultServer, mode: str, error: type, status: int) -> None:
    backend = large(fast=fast, model=LOCAL_MODEL, api_base=fault_server.api_base(mode), timeout_s=5)
    with pytest.raises(error) as info:
        run(backend.complete(ask()))
    assert info.value.status_code == status
    with pytest.raises(error):
        run(collect(backend, ask()))
    if mode == "429":
        assert info.value.retry_after == 7.0
    assert len(fault_server.requests) == 2  # no hidden retries


@PATHS
def test_a_slow_provider_times_out_with_504(fast: bool, fault_server: FaultServer) -> None:
    backend = large(fast=fast, model=LOCAL_MODEL, api_base=fault_server.api_base("slow"), timeout_s=1.0)
    assert SLOW_SECONDS > 1.0
    with pytest.raises(BackendTimeoutError, match="large.timeout_s") as info:
        run(backend.complete(ask()))
    assert info.value.status_code == 504


@PATHS
def test_a_stopped_server_makes_the_tier_unavailable(fast: bool, fault_server: FaultServer) -> None:
    api_base = fault_server.api_base("ok")
    backend = large(fast=fast, model=LOCAL_MODEL, api_base=api_base, timeout_s=5)
    assert run(backend.complete(ask())).text == FAULT_ANSWER
    assert run(backend.health()).ready
    fault_server.stop()
    with pytest.raises(TierUnavailableError) as info:
        run(backend.complete(ask()))
    assert info.value.status_code == 503
    assert not run(backend.health()).ready


@PATHS
def test_fallbacks_are_tried_in_order_and_the_answering_model_reported(fast: bool, fault_server: FaultServer) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/v1"
    backend = large(fast=fast, model="openai/primary", api_base=fault_server.api_base("500"), timeout_s=5, options={
        "fallbacks": [{"model": "openai/second", "api_base": nowhere},
                      {"model": "openai/third", "api_base": fault_server.api_base("ok")}]})
    completion = run(backend.complete(ask()))
    assert completion.model == "openai/third" and completion.text == FAULT_ANSWER
    events = run(collect(backend, ask()))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == FAULT_ANSWER
    assert isinstance(events[-1], Completion) and events[-1].model == "openai/third"
    assert [r["mode"] for r in fault_server.requests] == ["500", "ok", "500", "ok"]


def test_openai_compatible_targets_take_the_fast_path_and_others_litellm() -> None:
    assert fast_route("openai/gpt-4o-mini", None) == ("https://api.openai.com/v1/chat/completions", "gpt-4o-mini")
    assert fast_route("openai/m", "http://h:8080/v1/") == ("http://h:8080/v1/chat/completions", "m")
    assert fast_route("hosted_vllm/m", "http://h/v1") == ("http://h/v1/chat/completions", "m")
    assert fast_route("hosted_vllm/m", None) is None  # no default server
    assert fast_route("anthropic/claude-x", None) is None and fast_route("gpt-4o", None) is None
    assert large(model="openai/x", options={"extra_params": {"custom_llm_provider": "openai"}})._fast_route(
        large(model="openai/x").targets[0]) is None  # litellm-specific parameters keep litellm
    assert large(model="openai/x", fast=False)._fast_route(large(model="openai/x").targets[0]) is None


def test_the_fast_path_does_not_call_litellm(fault_server: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import litellm

    async def refuse(**_: object) -> None:
        raise AssertionError("litellm.acompletion was called")

    monkeypatch.setattr(litellm, "acompletion", refuse)
    backend = large(model=LOCAL_MODEL, api_base=fault_server.api_base("ok"))
    assert run(backend.complete(ask())).text == FAULT_ANSWER
    assert "".join(e.text for e in run(collect(backend, ask())) if isinstance(e, TextDelta)) == FAULT_ANSWER
    sent = fault_server.requests[-1]["payload"]
    assert isinstance(sent, dict) and sent["stream"] and sent["stream_options"] == {"include_usage": True}
    with pytest.raises(UpstreamError):  # the litellm path (fast_path: false) does call it: the check above bites
        run(large(model=LOCAL_MODEL, api_base=fault_server.api_base("ok"), fast=False).complete(ask()))


def test_a_small_tier_served_through_litellm_is_judged() -> None:
    backend = large(tier="small", model="openai/x")
    assert not backend._completion(ask("Rewrite politely: " + "word " * 30), backend.targets[0], "No.", "stop",
                                   1, 1, []).sufficient
    assert backend._completion(ask(), backend.targets[0], "", "stop", 1, 0, []).reason == "empty answer"


# -- llama-cpp-python's OpenAI-compatible server as the large tier -----------------------------

@pytest.mark.slow
def test_forced_large_completion_against_llama_server(llama_server: str) -> None:
    backend = large(model=LOCAL_MODEL, api_base=llama_server, timeout_s=120)
    health = run(backend.health())
    assert health.ready and "HTTP 200" in health.detail
    completion = run(backend.complete(ask("Name a fruit.", seed=1, temperature=0.0)))
    assert completion.text and completion.model == LOCAL_MODEL
    assert completion.sufficient and completion.cpu_seconds is None
    assert completion.prompt_tokens > 5 and 0 < completion.completion_tokens <= 12


@pytest.mark.slow
def test_streaming_large_completion_against_llama_server(llama_server: str) -> None:
    backend = large(model=LOCAL_MODEL, api_base=llama_server, timeout_s=120)
    events = run(collect(backend, ask("Name three fruits, one per line.", seed=1, temperature=0.0)))
    final = events[-1]
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert isinstance(final, Completion) and len(deltas) >= 2
    assert "".join(deltas) == final.text
    assert final.prompt_tokens > 5 and final.completion_tokens > 0


@pytest.mark.slow
def test_an_insufficient_small_answer_is_answered_by_the_large_tier(llama_server: str, tmp_path: Path) -> None:
    small = build_llamacpp(TierConfig(backend="llamacpp", options={"logprob_check": True}), tier="small",
                           data_dir=tmp_path)
    backend = large(model=LOCAL_MODEL, api_base=llama_server, timeout_s=120)
    request = ask("Say hello to Ana.", min_confidence=1.0)  # no generated answer is certain of every token
    attempt = run(small.complete(request))
    assert not attempt.sufficient and attempt.reason
    answer = run(backend.complete(request))
    assert answer.sufficient and answer.text and answer.model == LOCAL_MODEL
    run(small.aclose())
