"""The small tier in process: a GGUF model run by llama-cpp-python, SmolLM2-135M-Instruct by default.

Why in process: a 135M model answers in about a second on two cores, less than a hop to a model
server would add, and its CPU time can be measured directly for the energy estimate. Details for
operators are in docs/MODELS.md; the choices that shape this module:

- Nothing loads at import or construction; ``start()`` (called by ``health()``) verifies the sha256
  and loads. One ``Llama`` per concurrency slot (default 1), handed out from a pool; admission, the
  wait queue and the 429 are the router's (``limits``, ``router.tier_runner``), not this backend's.
- The prompt is rendered with the GGUF's chat template and counted with the model's tokenizer;
  passages that do not fit are dropped, ``max_tokens`` shrinks to the room left, and a prompt that
  leaves no room is a 400 ``ContextLengthError``.
- ``timeout_s`` is enforced by a llama.cpp stopping criterion checked after every token, so a timed-out
  request really stops computing (504) and its slot is freed.
- CPU seconds are process CPU time around the generation inside the slot: llama.cpp computes on its
  own worker threads, which thread CPU time would miss. With one slot it errs slightly high (it also
  counts the event loop); with several slots the figures of overlapping requests overlap.
- Each slot's model always runs on the slot's own thread: llama.cpp's OpenMP thread team belongs to
  the calling thread, and hopping between threads measured up to 3-5x slower on this machine.
- A request with a seed re-evaluates its whole prompt: a reused cached prefix changes the logits in
  the last bits, enough to change a sampled token.
- Tokens: llama.cpp's usage; streamed answers (no usage from llama-cpp-python) use the tokenizer.
- ``response_format`` is enforced with a grammar (``backends.llamacpp_params``, ``options.json_mode``); penalties are
  applied; other OpenAI fields are not (``frugal.ignored_params`` lists them).
- ``options.logprob_check`` measures the mean token logprob for ``backends.sufficiency``; it needs
  ``logits_all`` (n_ctx × vocabulary floats: ~400 MB for SmolLM2 at n_ctx 2048).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from backends.llamacpp_params import APPLIED_PARAMS, extra_params, judge_json, wants_json
from backends.llamacpp_setup import (
    DEFAULT_MAX_CONCURRENCY,
    LlamaCppOptions,
    amx_warning,
    resolve_model_path,
)
from backends.llamacpp_slots import GenerationRun, ModelSlot, in_own_thread
from backends.prompting import FittedPrompt, fit_prompt
from backends.sufficiency import judge_answer
from router.core import (
    Backend,
    Completion,
    CompletionRequest,
    Health,
    StreamEvent,
    TextDelta,
    Tier,
)
from router.core.capabilities import JSON_OBJECT, JSON_SCHEMA
from router.core.errors import (
    BackendTimeoutError,
    ContextLengthError,
    FrugalError,
    InvalidRequestError,
    TierUnavailableError,
)

logger = logging.getLogger(__name__)

class LlamaCppBackend(Backend):
    """Answers with a local GGUF model through llama-cpp-python, judging its own answers."""

    def __init__(
        self,
        *,
        tier: Tier,
        model_path: Path,
        options: LlamaCppOptions,
        expected_sha256: str | None,
        timeout_s: float = 60.0,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        name: str = "llamacpp",
    ) -> None:
        super().__init__(tier=tier, name=name)
        self.model_path = model_path
        self.model_name = model_path.name.removesuffix(".gguf")
        self.options = options
        self.expected_sha256 = expected_sha256
        self.timeout_s = timeout_s
        self.max_concurrency = max_concurrency
        self._free: asyncio.Queue[ModelSlot] = asyncio.Queue()
        self._loaded = 0
        self._load_lock = asyncio.Lock()
        self._load_error: FrugalError | None = None

    def work_name(self) -> str:
        """The model's name: the key of its measured J per token in ``energy.work``."""
        return self.model_name

    def capabilities(self) -> frozenset[str]:
        """Both JSON formats, enforced by a grammar, when ``options.json_mode`` is on."""
        return frozenset({JSON_OBJECT, JSON_SCHEMA}) if self.options.json_mode else frozenset()

    def applied_params(self) -> frozenset[str]:
        """The OpenAI fields beyond the common ones that this tier applies."""
        return APPLIED_PARAMS

    # -- loading -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Verify and load the model, one instance per slot (idempotent); ``TierUnavailableError`` when it cannot."""
        async with self._load_lock:
            if self._loaded:
                return
            if self._load_error is not None:
                raise self._load_error
            try:
                self._free.put_nowait(await in_own_thread(self._load_slot, True))
                self._loaded = 1
            except FrugalError as exc:
                self._load_error = TierUnavailableError(f"{self.tier} tier: {exc.message}")
                raise self._load_error from exc
            while self._loaded < self.max_concurrency:  # every slot now, so that no concurrent request loads one
                self._free.put_nowait(await in_own_thread(self._load_slot, False))
                self._loaded += 1

    @property
    def warming(self) -> bool:
        """Whether the model is loading right now for the first time."""
        return not self._loaded and self._load_error is None and self._load_lock.locked()

    def _load_slot(self, thread: ThreadPoolExecutor, verify: bool) -> ModelSlot:
        from router.core.assets import verify_sha256

        try:
            import llama_cpp
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as exc:
            raise TierUnavailableError("llama-cpp-python is not installed: pip install llama-cpp-python") from exc
        if not self.model_path.is_file():
            raise TierUnavailableError(f"GGUF model file not found: {self.model_path} (set the tier's model)")
        if verify:
            started = time.monotonic()
            verify_sha256(self.model_path, self.expected_sha256)
            logger.info("verified %s in %.2fs", self.model_path.name, time.monotonic() - started)
        warning = amx_warning(llama_cpp.llama_print_system_info().decode(errors="replace"))
        if warning:
            logger.warning("%s", warning)
        try:
            llm = llama_cpp.Llama(
                model_path=str(self.model_path),
                n_ctx=self.options.n_ctx,
                n_threads=self.options.n_threads,
                n_batch=min(self.options.n_batch, self.options.n_ctx),
                logits_all=self.options.logprob_check,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise TierUnavailableError(f"llama.cpp could not load {self.model_path}: {exc}") from exc
        template = self.options.chat_template or llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise TierUnavailableError(f"{self.model_path.name} has no chat template; set options.chat_template")
        eos, bos = llm.token_eos(), llm.token_bos()
        formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
            bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
            stop_token_ids=[eos],
        )
        logger.info("loaded %s (n_ctx=%d, n_threads=%d)", self.model_path.name, self.options.n_ctx, self.options.n_threads)
        return ModelSlot(llm, formatter, thread)

    async def health(self) -> Health:
        """Load the model if needed and report whether the tier can answer; never waits for a load under way."""
        if self.warming:
            return Health(ready=False, warming=True, detail=f"loading {self.model_name}")
        try:
            await self.start()
        except FrugalError as exc:
            return Health(ready=False, detail=exc.message)
        return Health(
            ready=True,
            detail=f"{self.model_name} loaded (n_ctx={self.options.n_ctx}, n_threads={self.options.n_threads}, "
            f"slots={self.max_concurrency})",
        )

    async def aclose(self) -> None:
        """Free the loaded models."""
        while not self._free.empty():
            self._free.get_nowait().close()
        self._loaded = 0

    # -- slots ---------------------------------------------------------------------------------

    async def _acquire(self) -> ModelSlot:
        """A loaded model instance; the router admits at most ``max_concurrency`` requests, so one is free soon."""
        await self.start()
        return await self._free.get()

    def _release(self, slot: ModelSlot) -> None:
        self._free.put_nowait(slot)

    # -- generation (runs in a worker thread) --------------------------------------------------

    def _prepare(self, slot: ModelSlot, request: CompletionRequest) -> tuple[FittedPrompt, int]:
        def render(messages: list[dict[str, str]]) -> tuple[list[int], list[str]]:
            try:
                rendered = slot.formatter(messages=messages)
            except Exception as exc:  # the chat template rejects the conversation (e.g. role order)
                raise InvalidRequestError(f"the {self.model_name} chat template rejected the messages: {exc}",
                                          param="messages") from exc
            tokens = slot.llm.tokenize(rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special,
                                       special=True)
            return tokens, list(rendered.stop or [])

        fitted = fit_prompt(request, render, n_ctx=self.options.n_ctx, min_room=self.options.min_output_tokens,
                            max_passage_chars=self.options.max_passage_chars)
        if fitted.room < self.options.min_output_tokens:
            raise ContextLengthError(
                f"the prompt is {len(fitted.tokens)} tokens but the {self.tier} tier's model ({self.model_name}) has a "
                f"{self.options.n_ctx}-token context window and needs {self.options.min_output_tokens} tokens for "
                f"the answer; shorten the conversation or raise the tier's options.n_ctx",
                param="messages",
            )
        return fitted, min(request.max_tokens or self.options.default_max_tokens, fitted.room)

    def _generate(
        self,
        slot: ModelSlot,
        request: CompletionRequest,
        deadline: float,
        cancel: threading.Event,
        on_text: Callable[[str], None] | None,
    ) -> GenerationRun:
        import llama_cpp
        import numpy as np

        run = GenerationRun()
        started = time.process_time()
        fitted, max_tokens = self._prepare(slot, request)
        tokens, run.passages, run.prompt_tokens = fitted.tokens, fitted.passages, len(fitted.tokens)
        previous: dict[str, Any] = {}

        def keep_going_or_stop(input_ids: Any, _logits: Any) -> bool:
            if self.options.logprob_check:
                row = previous.get("row")
                if row is not None:
                    run.logprobs.append(float(row[input_ids[-1]]))
                logits = slot.llm.scores[len(input_ids) - 1].astype(np.float64)
                top = logits.max()
                previous["row"] = logits - (top + np.log(np.exp(logits - top).sum()))
            if cancel.is_set() or time.monotonic() > deadline:
                run.timed_out = True
                return True
            return False

        params: dict[str, Any] = {
            "max_tokens": max_tokens,
            "temperature": self.options.temperature if request.temperature is None else request.temperature,
            "top_p": self.options.top_p if request.top_p is None else request.top_p,
            "repeat_penalty": self.options.repeat_penalty,
            "stop": [*request.stop, *fitted.stop],
            "seed": None if request.seed is None else request.seed % 2**32,  # llama.cpp takes a uint32
            "stopping_criteria": llama_cpp.StoppingCriteriaList([keep_going_or_stop]),
        }
        params.update(extra_params(request))
        if request.seed is not None:
            slot.llm.reset()  # reusing a cached prompt prefix changes the logits slightly: no reproducible seed
        if on_text is None:
            result = slot.llm.create_completion(tokens, **params)
            choice = result["choices"][0]
            run.text, run.finish_reason = choice["text"], choice["finish_reason"] or "stop"
            run.completion_tokens = result["usage"]["completion_tokens"]
        else:
            pieces = []
            for chunk in slot.llm.create_completion(tokens, stream=True, **params):
                choice = chunk["choices"][0]
                if choice["text"]:
                    pieces.append(choice["text"])
                    on_text(choice["text"])
                if choice.get("finish_reason"):
                    run.finish_reason = choice["finish_reason"]
            run.text = "".join(pieces)
            run.completion_tokens = len(slot.llm.tokenize(run.text.encode("utf-8"), add_bos=False, special=True))
        run.cpu_seconds = time.process_time() - started
        if run.logprobs:
            run.mean_logprob = sum(run.logprobs) / len(run.logprobs)
        return run

    def _completion(self, request: CompletionRequest, run: GenerationRun) -> Completion:
        min_confidence = self.options.min_confidence if request.min_confidence is None else request.min_confidence
        if wants_json(request):
            verdict = judge_json(run.text, hit_token_limit=run.finish_reason == "length")
        else:
            verdict = judge_answer(
                request.last_user_text(),
                run.text,
                min_confidence=min_confidence,
                mean_logprob=run.mean_logprob,
                hit_token_limit=run.finish_reason == "length",
            )
        return Completion(
            text=run.text.strip(),
            model=self.model_name,
            finish_reason=run.finish_reason,
            prompt_tokens=run.prompt_tokens,
            completion_tokens=run.completion_tokens,
            sufficient=verdict.sufficient,
            confidence=verdict.confidence,
            reason=verdict.reason,
            cpu_seconds=run.cpu_seconds,
            sources=[passage.source for passage in run.passages],
            passages=run.passages,
        )

    def _timeout(self) -> BackendTimeoutError:
        return BackendTimeoutError(f"the {self.tier} tier ({self.model_name}) did not answer within "
                                   f"{self.timeout_s:g}s (the tier's timeout_s)")

    # -- public API ----------------------------------------------------------------------------

    async def complete(self, request: CompletionRequest) -> Completion:
        """Answer in full, then judge the answer's sufficiency."""
        slot = await self._acquire()
        started = time.monotonic()
        cancel = threading.Event()
        work = asyncio.ensure_future(
            asyncio.get_running_loop().run_in_executor(
                slot.thread, self._generate, slot, request, started + self.timeout_s, cancel, None))
        try:
            run = await asyncio.shield(work)
        except asyncio.CancelledError:
            cancel.set()
            await asyncio.gather(work, return_exceptions=True)
            raise
        finally:
            if work.done():
                self._release(slot)
        if run.timed_out:
            raise self._timeout()
        return self._completion(request, run)

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        """Yield a ``TextDelta`` per generated piece of text, then the judged ``Completion``."""
        slot = await self._acquire()
        started = time.monotonic()
        deadline = started + self.timeout_s
        cancel = threading.Event()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str] = asyncio.Queue()

        def on_text(text: str) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, text)

        work = asyncio.ensure_future(
            loop.run_in_executor(slot.thread, self._generate, slot, request, deadline, cancel, on_text))
        try:
            while not (work.done() and queue.empty()):
                getter = asyncio.ensure_future(queue.get())
                waiting: set[asyncio.Future[Any]] = {getter, work}
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield TextDelta(getter.result())
                else:
                    getter.cancel()
            run = work.result()
        finally:
            cancel.set()
            await asyncio.shield(asyncio.gather(work, return_exceptions=True))
            self._release(slot)
        if run.timed_out:
            raise self._timeout()
        yield self._completion(request, run)


def build(config: Any, *, tier: Tier, data_dir: Path) -> LlamaCppBackend:
    """Registry factory for ``llamacpp``: validates options; loads nothing until ``start()``."""
    try:
        options = LlamaCppOptions.model_validate(dict(config.options or {}))
    except ValidationError as exc:
        raise ValueError(f"{tier}.options for the llamacpp backend: {exc}") from exc
    if config.model and "sha256" not in options.model_fields_set:
        expected = None  # a custom GGUF: check a hash only when the operator gives one
    else:
        expected = options.sha256
    explicit = "max_concurrency" in getattr(config, "model_fields_set", set())
    return LlamaCppBackend(
        tier=tier,
        model_path=resolve_model_path(config.model, data_dir),
        options=options,
        expected_sha256=expected,
        timeout_s=config.timeout_s,
        max_concurrency=config.max_concurrency if explicit else DEFAULT_MAX_CONCURRENCY,
    )
