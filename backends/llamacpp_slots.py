"""The llama.cpp tier's moving parts: one loaded model on its own thread (a slot), and what a generation produced.

Each slot's model always runs on the slot's own thread: llama.cpp's OpenMP thread team belongs to the
calling thread, and hopping between threads measured up to 3-5x slower on this machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from router.core import Passage

_T = TypeVar("_T")

@dataclass
class GenerationRun:
    """What one generation produced, measured in its worker thread."""

    text: str = ""
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cpu_seconds: float = 0.0
    mean_logprob: float | None = None
    timed_out: bool = False
    logprobs: list[float] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)


class ModelSlot:
    """One loaded model, its chat formatter and the one thread that runs it; one request at a time."""

    def __init__(self, llm: Any, formatter: Any, thread: ThreadPoolExecutor) -> None:
        self.llm = llm
        self.formatter = formatter
        self.thread = thread

    def close(self) -> None:
        """Free the model and stop its thread."""
        self.llm.close()
        self.thread.shutdown(wait=False)


async def in_own_thread(function: Callable[..., _T], *args: Any) -> _T:
    """Run ``function`` on a fresh single-thread executor that becomes the slot's thread."""
    thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llamacpp-slot")
    try:
        return await asyncio.get_running_loop().run_in_executor(thread, function, thread, *args)
    except BaseException:
        thread.shutdown(wait=False)
        raise
