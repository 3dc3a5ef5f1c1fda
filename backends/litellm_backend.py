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

How provider failures map onto ``router.core.errors`` (after the last fallback failed):

    litellm exception                                   Frugal error
    ContextWindowExceededError                          ContextLengthError     400
    Timeout                                             BackendTimeoutError    504
    RateLimitError                                      RateLimitError         429 (retry_after from Retry-After)
    AuthenticationError, PermissionDeniedError          UpstreamError          502 naming api_key_env
    NotFoundError, BadRequestError, UnprocessableEntity UpstreamError          502 naming model/api_base/options
    APIConnectionError, ServiceUnavailable, BadGateway  TierUnavailableError   503 (cannot reach the tier;
    or any error caused by a refused connection)                             litellm reports these as 500s)
    InternalServerError, malformed answers, the rest    UpstreamError          502 (it answered, wrongly)

A 503 means "the large tier is not there", which the dispatcher may answer by degrading to the small
tier (``on_large_unavailable``); a 502 means it is there but answered badly, which an operator must
look at. ``Completion.model`` is the target that actually answered; ``cpu_seconds`` is None (the work
ran elsewhere); the large tier's answers are always sufficient, a small tier served through litellm
is judged by ``backends.sufficiency`` like the in-process one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from backends.litellm_setup import LiteLLMOptions, Target, litellm_kind, retry_after_of
from backends.openai_fast import (
    FastClient,
    UpstreamStatus,
    chunk_field,
    classify,
    fast_route,
    retryable,
    usage_of,
)
from backends.prompting import chat_messages
from backends.sufficiency import judge_answer
from router.core import Backend, Completion, CompletionRequest, Health, StreamEvent, TextDelta, Tier
from router.core.errors import (
    BackendTimeoutError,
    ContextLengthError,
    FrugalError,
    RateLimitError,
    TierUnavailableError,
    UpstreamError,
)

logger = logging.getLogger(__name__)

PLACEHOLDER_KEY = "sk-no-key-required"
_SECRET_ENV = re.compile(r"(?:API_KEY|_KEY|_TOKEN|_SECRET)$", re.IGNORECASE)
_KEY_LIKE = re.compile(r"\b(?:sk|pk|key)-[A-Za-z0-9_\-]{12,}|(?<=Bearer )[A-Za-z0-9._\-]{12,}")
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
    ) -> None:
        super().__init__(tier=tier, name=name)
        self.targets = targets
        self.options = options
        self.timeout_s = timeout_s
        self._client = FastClient(timeout_s)  # the fast path's and the health probe's keep-alive client

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
        text = str(text)
        secrets = {key, self.options.extra_params.get("api_key")}
        # with no api_key_env, litellm reads the provider's own variable (OPENAI_API_KEY, ...)
        secrets |= {value for name, value in os.environ.items() if _SECRET_ENV.search(name)}
        for secret in sorted((s for s in secrets if isinstance(s, str) and len(s) >= 8 and s != PLACEHOLDER_KEY),
                             key=len, reverse=True):
            text = text.replace(secret, "***")
        return _KEY_LIKE.sub("***", text)[:400]

    def map_error(self, exc: Exception, target: Target, key: str | None) -> FrugalError:
        """Translate a litellm or fast-path failure into the Frugal error tree (see the module docstring)."""
        detail = self._scrub(getattr(exc, "message", None) or str(exc), key)
        where = f"{self.tier} tier model {target.model}" + (f" at {target.api_base}" if target.api_base else "")
        setting = f"{self.tier}.api_key_env ({target.api_key_env})" if target.api_key_env else "the provider's API key env var"
        kind = classify(exc) or litellm_kind(exc, detail)
        if kind == "context":
            return ContextLengthError(f"the prompt does not fit the context window of {target.model}: {detail}",
                                      param="messages")
        if kind == "timeout":
            return BackendTimeoutError(f"{where} did not answer within {self.timeout_s:g}s ({self.tier}.timeout_s)")
        if kind == "rate_limit":
            retry = exc.retry_after if isinstance(exc, UpstreamStatus) else retry_after_of(exc)
            return RateLimitError(f"{where} is rate limited: {detail}", retry_after=retry)
        if kind == "auth":
            return UpstreamError(f"{where} rejected the API key; check {setting}: {detail}",
                                 param=f"{self.tier}.api_key_env")
        if kind == "not_found":
            return UpstreamError(f"{where} was not found; check {self.tier}.model and {self.tier}.api_base: {detail}",
                                 param=f"{self.tier}.model")
        if kind == "bad_request":
            return UpstreamError(f"{where} refused the request; check {self.tier}.model, {self.tier}.api_base and "
                                 f"{self.tier}.options: {detail}", param=f"{self.tier}.model")
        if kind == "unreachable":
            return TierUnavailableError(f"cannot reach the {where}; check that it runs and {self.tier}.api_base: {detail}")
        if kind == "malformed":
            return UpstreamError(f"{where} sent a malformed answer: {detail}")
        if kind == "server_error":
            return UpstreamError(f"{where} failed with a server error: {detail}")
        return UpstreamError(f"{where} answered with an error or an unreadable reply: {detail}")

    def _fast_route(self, target: Target) -> tuple[str, str] | None:
        """The fast path's (URL, upstream model) for a target, or None when litellm must call it."""
        if not self.options.fast_path or self.options.extra_params:
            return None
        return fast_route(target.model, target.api_base)

    def _body(self, model: str, request: CompletionRequest) -> dict[str, Any]:
        """The OpenAI chat request the fast path sends."""
        body: dict[str, Any] = {
            "model": model, "messages": chat_messages(request, max_passage_chars=self.options.max_passage_chars)}
        for name in ("max_tokens", "temperature", "top_p", "seed", "user"):
            value = getattr(request, name)
            if value is not None:
                body[name] = value
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
        return self._completion(request, target, text, choice.get("finish_reason"),
                                *self._tokens(target, request, text, usage_of(reply)))

    def _params(self, target: Target, request: CompletionRequest, key: str | None) -> dict[str, Any]:
        """``litellm.acompletion``'s arguments: the same OpenAI request, with litellm's own options."""
        params: dict[str, Any] = {
            **self._body(target.model, request),
            "timeout": self.timeout_s,
            "num_retries": self.options.num_retries,
            "max_retries": 0,
            "drop_params": True,
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
                    prompt_tokens: int, completion_tokens: int, flags: list[str]) -> Completion:
        if self.tier == "large" and not text.strip() and finish != "length":
            raise UpstreamError(f"the {self.tier} tier model {target.model} returned no answer (finish_reason={finish})")
        completion = Completion(text=text, model=target.model, finish_reason=finish or "stop",
                                prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                                sources=[passage.source for passage in request.context],
                                passages=list(request.context), flags=flags)
        if self.tier != "large":
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
        for target in self.targets:
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
                return self._completion(request, target, text, choice.finish_reason,
                                        *self._tokens(target, request, text, usage))
            except FrugalError as exc:
                error = exc
            except Exception as exc:  # noqa: BLE001 - every provider failure is mapped, none escapes raw
                error = self.map_error(exc, target, key)  # not chained: the raw error may carry the key
            logger.warning("%s tier: %s failed (%s)%s", self.tier, target.model, type(error).__name__,
                           "; trying the next fallback" if target is not self.targets[-1] else "")
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
        for target in self.targets:
            key = None
            started_output = False
            try:
                key = self._key(target)
                deadline = time.monotonic() + self.timeout_s + 5.0
                pieces: list[str] = []
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
                        content = chunk_field(chunk_field(choice, "delta") or {}, "content")
                        if content:
                            started_output = True
                            pieces.append(content)
                            yield TextDelta(content)
                        finish = chunk_field(choice, "finish_reason") or finish
                text = "".join(pieces)
                yield self._completion(request, target, text, finish,
                                       *self._tokens(target, request, text, usage_of({"usage": usage})))
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
    return LiteLLMBackend(tier=tier, targets=targets, options=options, timeout_s=config.timeout_s)
