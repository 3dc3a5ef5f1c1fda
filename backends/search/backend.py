"""The search tier's backend: answers from the local tantivy index and judges its own answer.

No model runs here, so ``prompt_tokens`` and ``completion_tokens`` are always 0; the energy of a
search is accounted from the measured CPU time of the work (``cpu_seconds``). A missing or unusable
index does not stop the service: ``health()`` reports it and ``complete()`` raises
``TierUnavailableError`` until an index appears (the next request tries again).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backends.search.compose import PassageCache, compose, render
from backends.search.gate import DEFAULT_MIN_CONFIDENCE, answer_span, confidence, explain
from backends.search.index import SearchIndex, index_exists
from backends.search.text import make_analyzer
from router.core import Backend, Completion, CompletionRequest, Health, StreamEvent, TextDelta, Tier
from router.core.errors import InvalidRequestError, TierUnavailableError

logger = logging.getLogger(__name__)

MODEL_NAME = "tantivy"
#: A lookup whose CPU time (recent mean) is below this runs on the event loop: handing it to a worker thread
#: costs more than it frees (the work holds the GIL anyway). ``bench/overload.py --baseline`` against the tree
#: before (bench/results/search_inline.json): per-round ratios 1.21-1.49x the forced-search goodput at 8 clients
#: and 1.14-1.28x at 64, on the demo index (0.7 ms of CPU a lookup). A slower index (a big corpus) goes
#: back to a thread, so that a long lookup never stalls other requests.
INLINE_BELOW_S = 0.002


class SearchOptions(BaseModel):
    """Options of the ``tantivy`` backend (``search.options`` in the config)."""

    model_config = ConfigDict(extra="forbid")

    index_dir: Path | None = Field(default=None, description="index directory; default <data_dir>/index")
    top_k: int = Field(default=5, ge=1, le=50, description="passages retrieved and handed on as context")
    min_confidence: float = Field(
        default=DEFAULT_MIN_CONFIDENCE, ge=0.0, le=1.0,
        description="gate threshold used when the request carries none (the admin threshold wins)",
    )


class TantivyBackend(Backend):
    """Answers the last user message from the index with cited sources and a confidence score."""

    def __init__(self, *, tier: Tier, index_dir: Path, options: SearchOptions | None = None) -> None:
        super().__init__(tier=tier, name=MODEL_NAME)
        self.options = options or SearchOptions()
        self.index_dir = Path(index_dir)
        self._index = SearchIndex(self.index_dir)
        self._analyzer_local = threading.local()
        self._passages = PassageCache()  # analysed passages, shared by lookups (``compose``)
        self._error: str | None = None
        self._mean_cpu_s = 0.0  # recent mean CPU time of a lookup (``INLINE_BELOW_S``)
        try:
            self._index.open()
        except (FileNotFoundError, ValueError, OSError) as exc:
            self._error = self._describe(exc)
            logger.warning("search index not available: %s", self._error)

    def _describe(self, exc: Exception) -> str:
        if isinstance(exc, FileNotFoundError) or not index_exists(self.index_dir):
            return f"no search index in {self.index_dir}; build one with `frugal index add PATH...`"
        return f"search index in {self.index_dir} cannot be opened: {exc}"

    def _analyzer(self) -> Any:
        analyzer = getattr(self._analyzer_local, "analyzer", None)
        if analyzer is None:
            analyzer = self._analyzer_local.analyzer = make_analyzer()
        return analyzer

    def _searcher(self) -> tuple[Any, Any]:
        try:
            pair = self._index.searcher()
        except (FileNotFoundError, ValueError, OSError) as exc:
            self._error = self._describe(exc)
            raise TierUnavailableError(f"search tier unavailable: {self._error}") from exc
        self._error = None
        return pair

    def answer(self, request: CompletionRequest) -> Completion:
        """Answer synchronously (the work ``complete`` runs in a worker thread)."""
        started = time.thread_time()
        question = request.last_user_text()
        if not question.strip():
            raise InvalidRequestError("the search tier needs a user message with text", param="messages")
        index, searcher = self._searcher()
        answer = compose(self._analyzer(), index, searcher, question, top_k=self.options.top_k, cache=self._passages)
        score = confidence(answer)
        threshold = self.options.min_confidence if request.min_confidence is None else request.min_confidence
        sufficient = answer.found and score >= threshold
        return Completion(
            text=render(answer),
            model=MODEL_NAME,
            prompt_tokens=0,
            completion_tokens=0,
            sufficient=sufficient,
            confidence=round(score, 4),
            reason=None if sufficient else explain(answer, score, threshold),
            cpu_seconds=time.thread_time() - started,
            sources=list(answer.sources),
            passages=answer.passages(),
            evidence=answer.evidence(answer_span(question, answer.sentences)),
        )

    def inline(self) -> bool:
        """Whether the next lookup runs on the event loop (its recent CPU time is below ``INLINE_BELOW_S``)."""
        return self._mean_cpu_s < INLINE_BELOW_S

    async def complete(self, request: CompletionRequest) -> Completion:
        """Answer from the index (on the event loop when lookups are quick, else in a worker thread); 0 tokens."""
        completion = self.answer(request) if self.inline() else await asyncio.to_thread(self.answer, request)
        if completion.cpu_seconds is not None:
            self._mean_cpu_s = 0.9 * self._mean_cpu_s + 0.1 * completion.cpu_seconds
        return completion

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        """Stream the answer line by line (sentences, then sources), then the final Completion."""
        completion = await self.complete(request)
        lines = completion.text.split("\n")
        for number, line in enumerate(lines):
            yield TextDelta(line if number == 0 else "\n" + line)
        yield completion

    def work_name(self) -> str:
        """``tantivy``: the key of one search's measured energy in ``energy.work``."""
        return MODEL_NAME

    async def health(self) -> Health:
        """Ready when the index opens and holds passages; otherwise the reason."""
        try:
            _, searcher = await asyncio.to_thread(self._searcher)
        except TierUnavailableError:
            return Health(ready=False, detail=self._error or "search index unavailable")
        passages = int(searcher.num_docs)
        if passages == 0:
            return Health(ready=False, detail=f"search index in {self.index_dir} is empty")
        return Health(ready=True, detail=f"{passages} passages in {self.index_dir}")

    async def aclose(self) -> None:
        """Drop the index handle."""
        self._index.close()


def build(config: Any, *, tier: Tier, data_dir: Path) -> TantivyBackend:
    """Registry factory: validate ``config.options`` and open (or wait for) the index."""
    raw = dict(getattr(config, "options", {}) or {})
    try:
        options = SearchOptions.model_validate(raw)
    except ValidationError as exc:
        valid = ", ".join(sorted(SearchOptions.model_fields))
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'options'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"search backend options invalid ({problems}); valid options: {valid}") from exc
    index_dir = options.index_dir or Path(data_dir) / "index"
    return TantivyBackend(tier=tier, index_dir=index_dir, options=options)
