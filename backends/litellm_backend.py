"""The large tier (and optionally a served small tier): any LLM that litellm can call.

The model is a litellm model string (``openai/gpt-4o-mini``, ``anthropic/…``, ``mistral/…``,
``ollama/…``, ``hosted_vllm/…``), optionally with ``api_base`` for a self-hosted OpenAI-compatible
server such as ``python -m llama_cpp.server``. The API key is read from the environment variable
named by ``api_key_env`` at call time (never logged, scrubbed from every error message); without
``api_key_env`` litellm uses the provider's usual variable (``OPENAI_API_KEY`` …), and a server
given by ``api_base`` gets a placeholder key. ``options.fallbacks`` is an ordered list of other
targets (a model string, or ``{model, api_base, api_key_env}``) tried in turn when a target fails.
litellm is imported lazily, with ``LITELLM_LOCAL_MODEL_COST_MAP=True`` so it never fetches its price
map from the network.

How provider failures map onto ``router.core.errors``: ``backends.litellm_errors``. A 503 means "the large tier is not there", which the dispatcher may answer by degrading to the small
tier (``on_large_unavailable``); a 502 means it is there but answered badly, which an operator must
look at. ``Completion.model`` is the target that actually answered; ``cpu_seconds`` is None (the work
ran elsewhere); the large tier's answers are always sufficient, a small tier served through litellm
is judged by ``backends.sufficiency`` like the in-process one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from backends.litellm_errors import map_failure
from backends.litellm_setup import (
    PLACEHOLDER_KEY,
    LiteLLMOptions,
    Target,
    scrub,
    target_capabilities,
)
from backends.openai_fast import (
    FastClient,
    as_dict,
    chunk_field,
    extra_fields,
    fast_route,
    retryable,
    usage_details,
    usage_of,
)
from backends.prompting import chat_messages, served_messages
from backends.sufficiency import judge_answer
from router.core import Backend, Completion, CompletionRequest, Health, StreamEvent, TextDelta, Tier
from router.core.capabilities import missing_message, param_of
from router.core.errors import (
    CapabilityError,
    FrugalError,
    TierUnavailableError,
    UpstreamError,
)
from router.core.types import merge_tool_call_deltas

logger = logging.getLogger(__name__)

TOKENS_ESTIMATED = "tokens_estimated"  # the provider sent no usage: litellm's tokenizer for the model counted them


def _litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        import litellm
    except ImportError as exc:
        raise TierUnavailableError("litellm is not installed: pip install litellm") from exc
    litellm.suppress_debug_info = True
    return litellm


class LiteLLMBackend(Backend):
    """Answers through ``litellm.acompletion``, trying fallbacks in order."""

    def __init__(
        self,
        *,
        tier: Tier,
        targets: list[Target],
        options: LiteLLMOptions,
        timeout_s: float = 60.0,
        name: str = "litellm",
        target_capabilities: list[frozenset[str]] | None = None,
    ) -> None:
        super().__init__(tier=tier, name=name)
        self.targets = targets
        self.target_capabilities = target_capabilities or [frozenset() for _ in targets]
        self.options = options
        self.timeout_s = timeout_s
        self._client = FastClient(timeout_s)  # the fast path's and the health probe's keep-alive client

    def capabilities(self) -> frozenset[str]:
        """What any of its targets honours; a request goes only to the targets that honour what it needs."""
        return frozenset().union(*self.target_capabilities)

    def applied_params(self) -> frozenset[str] | None:
        """Every field reaches the upstream as the client sent it."""
        return None

    def _able(self, request: CompletionRequest) -> list[Target]:
        """The targets that honour what the request needs, in order."""
        able = [t for t, caps in zip(self.targets, self.target_capabilities, strict=True) if request.needs <= caps]
        if not able:
            raise CapabilityError(missing_message(request.needs - self.capabilities(), f"the {self.tier} tier"),
                                  param=param_of(request.needs - self.capabilities()))
        return able

    @property
    def configured(self) -> bool:
        """Whether a model is configured at all."""
        return bool(self.targets)

    def _not_configured(self) -> str:
        prefix = f"FRUGAL_{self.tier.upper()}__"
        return (f"the {self.tier} tier has no model configured: set {prefix}MODEL to a litellm model string "
                f"(e.g. openai/gpt-4o-mini) and, for a self-hosted OpenAI-compatible server, {prefix}API_BASE "
                f"(e.g. http://127.0.0.1:8080/v1); see docs/MODELS.md")

    def _key(self, target: Target) -> str | None:
        if target.api_key_env:
            key = os.environ.get(target.api_key_env)
            if not key:
                raise UpstreamError(f"the environment variable {target.api_key_env} (named by {self.tier}.api_key_env "
                                    f"for {target.model}) is not set", param=f"{self.tier}.api_key_env")
            return key
        return PLACEHOLDER_KEY if target.api_base else None

    def _scrub(self, text: str, key: str | None) -> str:
        """The text with every key litellm may have sent replaced by ``***``, cut to 400 characters."""
        return scrub(text, {key, self.options.extra_params.get("api_key")})

    def map_error(self, exc: Exception, target: Target, key: str | None) -> FrugalError:
        """Translate a litellm or fast-path failure into the Frugal error tree (``backends.litellm_errors``)."""
        detail = self._scrub(getattr(exc, "message", None) or str(exc), key)
        return map_failure(exc, detail, tier=self.tier, target=target, timeout_s=self.timeout_s)

    def _fast_route(self, target: Target) -> tuple[str, str] | None:
        """The fast path's (URL, upstream model) for a target, or None when litellm must call it."""
        if not self.options.fast_path or self.options.extra_params:
            return None
        return fast_route(target.model, target.api_base)

    def _body(self, model: str, request: CompletionRequest) -> dict[str, Any]:
        """The OpenAI chat request sent upstream: the client's messages and fields as sent, grounded when needed."""
        body: dict[str, Any] = {
            **request.params, "model": model,
            "messages": served_messages(request, max_passage_chars=self.options.max_passage_chars)}
        for name in ("temperature", "top_p", "seed", "user"):
            value = getattr(request, name)
            if value is not None:
                body[name] = value
        if request.max_tokens is not None:
            body[request.max_tokens_param] = request.max_tokens
        if request.stop:
            body["stop"] = list(request.stop)
        return body

    async def _fast_complete(self, target: Target, route: tuple[str, str], key: str | None,
                             request: CompletionRequest) -> Completion:
        url, model = route
        body = self._body(model, request)
        for attempt in range(self.options.num_retries + 1):
            try:
                reply = await self._client.complete(url, key, body)
                break
            except Exception as exc:
                if attempt == self.options.num_retries or not retryable(exc):
                    raise
        choice = reply["choices"][0]
        text = choice["message"].get("content") or ""
        completion = self._completion(request, target, text, choice.get("finish_reason"),
                                      *self._tokens(target, request, text, usage_of(reply)),
                                      message_fields=extra_fields(choice["message"]))
        completion.logprobs, completion.usage_details = choice.get("logprobs"), usage_details(reply.get("usage"))
        return completion

    def _params(self, target: Target, request: CompletionRequest, key: str | None) -> dict[str, Any]:
        """``litellm.acompletion``'s arguments: the same OpenAI request, with litellm's own options."""
        params: dict[str, Any] = {
            **self._body(target.model, request),
            "timeout": self.timeout_s,
            "num_retries": self.options.num_retries,
            "max_retries": 0,
            "drop_params": True,  # sampling hints a provider lacks; capabilities were checked before (_able)
            **self.options.extra_params,
        }
        if target.api_base:
            params["api_base"] = target.api_base
        if key:
            params["api_key"] = key
        return params

    def _tokens(self, target: Target, request: CompletionRequest, text: str,
                usage: Any) -> tuple[int, int, list[str]]:
        """Prompt and output tokens from the provider's usage; counted by litellm, and flagged, when it sent none."""
        prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        output = int(getattr(usage, "completion_tokens", 0) or 0)
        flags: list[str] = []
        if not prompt or (not output and text):
            litellm = _litellm()
        if not prompt:
            messages = chat_messages(request, max_passage_chars=self.options.max_passage_chars)
            prompt = int(litellm.token_counter(model=target.model, messages=messages))
            flags.append(TOKENS_ESTIMATED)
        if not output and text:
            output = int(litellm.token_counter(model=target.model, text=text, count_response_tokens=True))
            flags.append(TOKENS_ESTIMATED)
        return prompt, output, list(dict.fromkeys(flags))

    def _completion(self, request: CompletionRequest, target: Target, text: str, finish: str | None,
                    prompt_tokens: int, completion_tokens: int, flags: list[str],
                    message_fields: dict[str, Any] | None = None) -> Completion:
        fields = message_fields or {}
        acted = bool(fields.get("tool_calls") or fields.get("function_call") or fields.get("refusal"))
        if self.tier == "large" and not text.strip() and finish != "length" and not acted:
            raise UpstreamError(f"the {self.tier} tier model {target.model} returned no answer (finish_reason={finish})")
        completion = Completion(text=text, model=target.model, finish_reason=finish or "stop",
                                prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                                sources=[passage.source for passage in request.context],
                                passages=list(request.context), flags=flags, message_fields=dict(fields))
        if acted:  # a tool call or a refusal is the upstream's answer as it is: nothing for a text gate to judge
            completion.confidence = 1.0
        elif self.tier != "large":
            threshold = self.options.min_confidence if request.min_confidence is None else request.min_confidence
            verdict = judge_answer(request.last_user_text(), text, min_confidence=threshold,
                                   hit_token_limit=finish == "length")
            completion.sufficient, completion.confidence, completion.reason = (
                verdict.sufficient, verdict.confidence, verdict.reason)
        else:
            completion.confidence = 1.0
        return completion

    def _check_configured(self) -> None:
        if not self.configured:
            raise TierUnavailableError(self._not_configured())

    def time_budget_s(self, timeout_s: float) -> float:
        """Every target's own budget (its retries and a 5 s margin included), so that fallbacks get their time."""
        return len(self.targets or [None]) * (timeout_s * (self.options.num_retries + 1) + 5.0)

    async def complete(self, request: CompletionRequest) -> Completion:
        """Ask each target in turn until one answers; raise the last target's mapped error."""
        self._check_configured()
        error: FrugalError | None = None
        targets = self._able(request)
        for target in targets:
            key = None
            try:
                key = self._key(target)
                budget = self.timeout_s * (self.options.num_retries + 1) + 5.0
                route = self._fast_route(target)
                if route is not None:
                    return await asyncio.wait_for(self._fast_complete(target, route, key, request), budget)
                response = await asyncio.wait_for(
                    _litellm().acompletion(**self._params(target, request, key)), budget)
                choice = response.choices[0]
                text = choice.message.content or ""
                usage = getattr(response, "usage", None)
                completion = self._completion(request, target, text, choice.finish_reason,
                                              *self._tokens(target, request, text, usage),
                                              message_fields=extra_fields(as_dict(choice.message)))
                completion.logprobs = as_dict(getattr(choice, "logprobs", None))
                completion.usage_details = usage_details(usage)
                return completion
            except FrugalError as exc:
                error = exc
            except Exception as exc:  # noqa: BLE001 - every provider failure is mapped, none escapes raw
                error = self.map_error(exc, target, key)  # not chained: the raw error may carry the key
            logger.warning("%s tier: %s failed (%s)%s", self.tier, target.model, type(error).__name__,
                           "; trying the next fallback" if target is not targets[-1] else "")
        assert error is not None
        raise error

    async def _chunks(self, target: Target, key: str | None, request: CompletionRequest) -> AsyncIterator[Any]:
        """The stream's chunks, from the fast path (dicts) or from litellm (objects)."""
        route = self._fast_route(target)
        if route is not None:
            url, model = route
            body = {**self._body(model, request), "stream": True, "stream_options": {"include_usage": True}}
            async for chunk in self._client.stream(url, key, body):
                yield chunk
            return
        params = self._params(target, request, key)
        params.update(stream=True, stream_options={"include_usage": True})
        response = await asyncio.wait_for(_litellm().acompletion(**params), self.timeout_s + 5.0)
        async for chunk in response:
            yield chunk

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        """Stream from the first target that starts answering; fall back only before the first delta."""
        self._check_configured()
        error: FrugalError | None = None
        for target in self._able(request):
            key = None
            started_output = False
            try:
                key = self._key(target)
                deadline = time.monotonic() + self.timeout_s + 5.0
                pieces: list[str] = []
                calls: list[dict[str, Any]] = []
                fields: dict[str, Any] = {}
                finish, usage = None, None
                iterator = self._chunks(target, key, request).__aiter__()
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError
                    try:
                        chunk = await asyncio.wait_for(iterator.__anext__(), remaining)
                    except StopAsyncIteration:
                        break
                    usage = chunk_field(chunk, "usage") or usage
                    for choice in chunk_field(chunk, "choices") or []:
                        delta = as_dict(chunk_field(choice, "delta")) or {}
                        content = delta.get("content")
                        others = extra_fields(delta)
                        logprobs = as_dict(chunk_field(choice, "logprobs"))
                        if content or others or logprobs:
                            started_output = True
                            pieces.append(content or "")
                            merge_tool_call_deltas(calls, others.get("tool_calls") or [])
                            fields.update({k: v for k, v in others.items() if k != "tool_calls"})
                            yield TextDelta(content or "", others or None, logprobs)
                        finish = chunk_field(choice, "finish_reason") or finish
                text = "".join(pieces)
                if calls:
                    fields["tool_calls"] = calls
                completion = self._completion(request, target, text, finish,
                                              *self._tokens(target, request, text, usage_of({"usage": usage})),
                                              message_fields=fields)
                completion.usage_details = usage_details(usage)
                yield completion
                return
            except FrugalError as exc:
                error = exc
            except Exception as exc:  # noqa: BLE001 - every provider failure is mapped, none escapes raw
                error = self.map_error(exc, target, key)  # not chained: the raw error may carry the key
            if started_output:
                raise error
            logger.warning("%s tier: %s failed to stream (%s)", self.tier, target.model, type(error).__name__)
        assert error is not None
        raise error

    async def health(self) -> Health:
        """Not ready without a model, a key, or (when ``api_base`` is set) a reachable server."""
        if not self.configured:
            return Health(ready=False, detail=self._not_configured(), configured=False)
        primary = self.targets[0]
        try:
            self._key(primary)
        except FrugalError as exc:
            return Health(ready=False, detail=exc.message)
        if not (primary.api_base and self.options.health_probe):
            return Health(ready=True, detail=f"{primary.model} configured (not probed)")
        url = primary.api_base.rstrip("/") + "/models"
        try:
            status = await self._client.probe(url, min(5.0, self.timeout_s))
        except Exception as exc:  # noqa: BLE001 - any failure to get an answer means not reachable
            return Health(ready=False, detail=f"cannot reach {url} for {primary.model}: {type(exc).__name__}")
        return Health(ready=True, detail=f"{primary.model} at {primary.api_base} reachable (HTTP {status})")

    async def aclose(self) -> None:
        """Close the keep-alive client."""
        await self._client.aclose()


def warm_imports() -> None:
    """Import litellm and the OpenAI SDK's lazily loaded resources now (≈1 s), not in the first request."""
    _litellm()
    import openai.resources.chat  # noqa: F401  # the SDK imports this on first use of client.chat


def build(config: Any, *, tier: Tier, data_dir: Path) -> LiteLLMBackend:
    """Registry factory for ``litellm``: validates options; no network until the first request."""
    try:
        options = LiteLLMOptions.model_validate(dict(config.options or {}))
    except ValidationError as exc:
        raise ValueError(f"{tier}.options for the litellm backend: {exc}") from exc
    targets: list[Target] = []
    if config.model:
        targets.append(Target(model=config.model, api_base=config.api_base, api_key_env=config.api_key_env))
        targets += [Target(model=f) if isinstance(f, str) else f for f in options.fallbacks]
    elif options.fallbacks:
        raise ValueError(f"{tier}.options.fallbacks is set but {tier}.model is not; set the primary model first")
    if targets:
        warm_imports()
    return LiteLLMBackend(tier=tier, targets=targets, options=options, timeout_s=config.timeout_s,
                          target_capabilities=target_capabilities(targets, options, tier))
