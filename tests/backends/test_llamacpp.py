"""The in-process small tier with the real SmolLM2 model: answers, streaming, limits, guards, failures."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.config import TierConfig
from backends.llamacpp import LlamaCppBackend, build
from backends.llamacpp_setup import SMOLLM2_SHA256, amx_warning
from router.core import Completion, CompletionRequest, Message, Passage, Source, TextDelta
from router.core.errors import BackendTimeoutError, ContextLengthError, RateLimitError, TierUnavailableError
from router.limits import Limiter
from router.tier_runner import TierRunner

pytestmark = pytest.mark.slow


def make(tmp_path: Path, **config: object) -> LlamaCppBackend:
    return build(TierConfig(backend="llamacpp", **config), tier="small", data_dir=tmp_path)  # type: ignore[arg-type]


def ask(text: str, **kwargs: object) -> CompletionRequest:
    return CompletionRequest(messages=[Message("user", text)], **kwargs)  # type: ignore[arg-type]


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppBackend]:
    small = make(tmp_path_factory.mktemp("llama"))
    yield small
    run(small.aclose())


def test_amx_builds_are_flagged_and_ours_has_none() -> None:
    import llama_cpp

    assert amx_warning("CPU : AVX2 = 1 | AVX512 = 1 | REPACK = 1 |") is None
    warning = amx_warning("CPU : AVX512 = 1 | AMX_INT8 = 1 | REPACK = 1 |")
    assert warning is not None and "-mno-amx-int8" in warning and "SIGSEGV" in warning
    # make install builds llama.cpp without AMX (its kernels crash on this project's machines)
    assert amx_warning(llama_cpp.llama_print_system_info().decode()) is None


def test_defaults_pin_smollm2_and_one_slot(tmp_path: Path) -> None:
    small = make(tmp_path)
    assert small.expected_sha256 == SMOLLM2_SHA256
    assert small.model_path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert small.max_concurrency == 1 and small.options.n_threads == 2
    assert small._loaded == 0  # nothing loaded before start()/health()
    custom = make(tmp_path, model=str(small.model_path), max_concurrency=2)
    assert custom.expected_sha256 is None and custom.max_concurrency == 2


def test_bad_options_are_rejected_with_the_setting_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n_ctxx"):
        make(tmp_path, options={"n_ctxx": 512})


def test_health_loads_the_model(backend: LlamaCppBackend) -> None:
    health = run(backend.health())
    assert health.ready and "SmolLM2" in health.detail


def test_complete_answers_with_usage_cpu_time_and_a_verdict(backend: LlamaCppBackend) -> None:
    completion = run(backend.complete(ask("Translate to French: Good morning, my friend.", max_tokens=24, seed=3)))
    assert completion.text
    assert completion.model == "SmolLM2-135M-Instruct.Q4_1"
    assert 0 < completion.completion_tokens <= 24 and completion.prompt_tokens > 10
    assert completion.cpu_seconds is not None and completion.cpu_seconds > 0
    assert completion.confidence is not None and 0.0 <= completion.confidence <= 1.0
    assert completion.sufficient == (completion.confidence >= backend.options.min_confidence)


def test_max_tokens_stop_and_seed_are_honoured(backend: LlamaCppBackend) -> None:
    cut = run(backend.complete(ask("Write a long story about a dragon.", max_tokens=5)))
    assert cut.completion_tokens == 5 and cut.finish_reason == "length"
    first = run(backend.complete(ask("Name a colour.", max_tokens=12, temperature=1.0, seed=42)))
    again = run(backend.complete(ask("Name a colour.", max_tokens=12, temperature=1.0, seed=42)))
    assert first.text == again.text
    stopped = run(backend.complete(ask("Count from 1 to 10, separated by commas.", max_tokens=40, temperature=0.0,
                                       stop=[","])))
    assert "," not in stopped.text


def test_stream_yields_deltas_then_the_same_answer(backend: LlamaCppBackend) -> None:
    async def collect() -> list[object]:
        return [event async for event in backend.stream(ask("Say hello to Ana.", max_tokens=20, seed=1))]

    events = run(collect())
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    final = events[-1]
    assert isinstance(final, Completion) and len(deltas) >= 1
    assert "".join(deltas).strip() == final.text
    assert final.completion_tokens > 0 and final.cpu_seconds and final.cpu_seconds > 0


def test_a_stream_closed_early_frees_the_slot(backend: LlamaCppBackend) -> None:
    async def scenario() -> Completion:
        stream = backend.stream(ask("Write a poem about the sea.", max_tokens=200))
        async for event in stream:
            assert isinstance(event, TextDelta)
            break
        await stream.aclose()
        return await backend.complete(ask("Say yes.", max_tokens=4))

    assert run(scenario()).completion_tokens > 0


def test_passages_ground_the_answer(backend: LlamaCppBackend) -> None:
    passage = Passage("Zorblatt Castle was built in 1742 by the architect Mira Kowe.", Source("Zorblatt Castle"))
    plain = run(backend.complete(ask("Who built Zorblatt Castle?", max_tokens=64, temperature=0.0)))
    grounded = run(backend.complete(ask("Who built Zorblatt Castle?", max_tokens=64, temperature=0.0,
                                        context=[passage])))
    assert grounded.prompt_tokens > plain.prompt_tokens + 15
    assert any(fact in grounded.text for fact in ("Kowe", "Mira", "1742"))  # wording differs between CPUs' kernels
    assert grounded.sources == [passage.source] and not plain.sources


def test_a_prompt_longer_than_the_context_is_a_clear_400(tmp_path: Path) -> None:
    small = make(tmp_path, options={"n_ctx": 256})
    with pytest.raises(ContextLengthError, match="256-token context window") as info:
        run(small.complete(ask("word " * 400, max_tokens=8)))
    assert info.value.status_code == 400
    # passages that do not fit are dropped instead, and the request is answered
    passages = [Passage("filler text " * 60, Source(f"p{i}")) for i in range(3)]
    answered = run(small.complete(ask("Say hi.", max_tokens=4, context=passages)))
    assert answered.prompt_tokens < 256
    run(small.aclose())


def test_requests_queue_and_time_out_in_the_queue_with_429(tmp_path: Path) -> None:
    """The router's tier slot (not the backend) queues and refuses: the small tier behind a one-slot limiter."""
    small = make(tmp_path)
    runner = TierRunner("small", small, timeout_s=60.0, limiter=Limiter("small", 1, max_queue=1, max_wait_s=0.2))

    async def scenario() -> tuple[BaseException | None, Completion]:
        await small.start()
        assert runner.limiter is not None
        await runner.limiter.acquire()  # the one slot is taken, as by a long generation (on any CPU's speed)
        try:
            queued = await asyncio.gather(runner.complete(ask("Say hi.", max_tokens=4)), return_exceptions=True)
        finally:
            runner.limiter.release(5.0)
        completed, _ = await runner.complete(ask("Say hi.", max_tokens=4))  # the slot came back
        return queued[0], completed

    refused, after = run(scenario())
    assert isinstance(refused, RateLimitError) and refused.retry_after and refused.retry_after >= 1.0
    assert after.completion_tokens > 0
    run(small.aclose())


def test_the_removed_queue_timeout_option_is_refused_with_its_replacement(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="limits.tier_max_wait_s"):
        make(tmp_path, options={"queue_timeout_s": 0.2})


def test_a_slow_generation_is_stopped_with_504_and_the_slot_reused(tmp_path: Path) -> None:
    small = make(tmp_path, timeout_s=0.001)  # past before the first token on any CPU

    async def scenario() -> Completion:
        await small.start()
        with pytest.raises(BackendTimeoutError, match="0.001s"):
            await small.complete(ask("Write a long story about a dragon.", max_tokens=500))
        small.timeout_s = 60.0  # the retry only checks that the slot came back
        return await small.complete(ask("Say hi.", max_tokens=3))

    assert run(scenario()).completion_tokens > 0
    run(small.aclose())


def test_logprob_check_makes_confidence_a_token_probability(tmp_path: Path) -> None:
    small = make(tmp_path, options={"logprob_check": True})
    sure = run(small.complete(ask("Say hello.", max_tokens=12, seed=1, min_confidence=0.0)))
    assert sure.sufficient and sure.confidence is not None and 0.0 < sure.confidence < 1.0
    strict = run(small.complete(ask("Say hello.", max_tokens=12, seed=1, min_confidence=1.0)))
    assert not strict.sufficient and strict.reason
    run(small.aclose())


def test_a_wrong_hash_or_missing_file_makes_the_tier_unavailable(tmp_path: Path) -> None:
    tampered = make(tmp_path, options={"sha256": "0" * 64})
    health = run(tampered.health())
    assert not health.ready and "sha256 mismatch" in health.detail
    with pytest.raises(TierUnavailableError):
        run(tampered.complete(ask("hi")))
    missing = make(tmp_path, model="models/absent.gguf")
    assert "not found" in run(missing.health()).detail
