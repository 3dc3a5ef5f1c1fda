"""A real, deterministic Backend for tests and benchmarks: it echoes the last user message.

Shipped in the package (like httpx's MockTransport) so tests and the gateway benchmark can exercise
the whole pipeline without a model. ``insufficient_when`` makes it judge some answers insufficient,
to exercise escalation; ``crash_when`` makes it raise as a buggy backend would; ``delay`` simulates
backend latency and ``word_delay`` a slow stream; ``ready_when_exists`` holds ``start()`` (the start-up
warm-up) until a file exists, as a model that is still loading; ``capabilities`` declares what it claims to
honour (it honours nothing: it echoes), to exercise capability routing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from router.core import Backend, Completion, CompletionRequest, Health, StreamEvent, TextDelta, Tier


class EchoBackend(Backend):
    """Answers ``"<prefix><last user text>"``; judged insufficient when the text contains a marker."""

    def __init__(
        self,
        *,
        tier: Tier,
        name: str = "echo",
        prefix: str = "",
        insufficient_when: str | None = None,
        crash_when: str | None = None,
        delay: float = 0.0,
        word_delay: float = 0.0,
        ready_when_exists: str | None = None,
        capabilities: list[str] | None = None,
    ) -> None:
        super().__init__(tier=tier, name=name)
        self.declared = frozenset(capabilities or ())
        self.ready_when_exists = Path(ready_when_exists) if ready_when_exists else None
        self._started = self.ready_when_exists is None
        self.prefix = prefix
        self.insufficient_when = insufficient_when
        self.crash_when = crash_when
        self.delay = delay
        self.word_delay = word_delay

    def capabilities(self) -> frozenset[str]:
        """What it was told to claim."""
        return self.declared

    def work_name(self) -> str:
        """Its name, as in its completions (never measured, so its work is priced by CPU time)."""
        return self.name

    async def start(self) -> None:
        """Wait until ``ready_when_exists`` exists (when set), as a loading model would."""
        while self.ready_when_exists is not None and not self.ready_when_exists.exists():
            await asyncio.sleep(0.02)
        self._started = True

    async def health(self) -> Health:
        """Ready once started; ``warming`` before."""
        return Health(ready=True) if self._started else Health(ready=False, warming=True, detail="warming up")

    async def complete(self, request: CompletionRequest) -> Completion:
        """Echo the last user message, counting whitespace-separated words as tokens."""
        started = time.process_time()
        if self.delay:
            await asyncio.sleep(self.delay)
        question = request.last_user_text()
        if self.crash_when and self.crash_when in question:
            raise RuntimeError("echo backend asked to crash")
        text = f"{self.prefix}{question}"
        insufficient = bool(self.insufficient_when and self.insufficient_when in question)
        prompt_words = sum(len(m.content.split()) for m in request.messages)
        return Completion(
            text=text,
            model=self.name,
            prompt_tokens=prompt_words,
            completion_tokens=len(text.split()),
            sufficient=not insufficient,
            confidence=0.0 if insufficient else 1.0,
            reason="marker present" if insufficient else None,
            cpu_seconds=time.process_time() - started,
            sources=[passage.source for passage in request.context],  # cites what it was handed, like a
            passages=list(request.context),                           # grounded model tier
        )

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        """Stream the echo word by word."""
        completion = await self.complete(request)
        words = completion.text.split(" ")
        for index, word in enumerate(words):
            if index and self.word_delay:
                await asyncio.sleep(self.word_delay)
            yield TextDelta(word if index == 0 else " " + word)
        yield completion


def build(config: Any, *, tier: Tier, data_dir: Path) -> EchoBackend:
    """Registry factory: the constructor's keyword arguments as options."""
    options = dict(getattr(config, "options", {}) or {})
    valid = {"prefix", "insufficient_when", "crash_when", "delay", "word_delay", "name", "ready_when_exists",
             "capabilities"}
    unknown = set(options) - valid
    if unknown:
        raise ValueError(f"echo backend: unknown options {sorted(unknown)}; valid: {', '.join(sorted(valid))}")
    return EchoBackend(tier=tier, **options)
