"""Measure what local work costs per call and per token on this host (``frugal calibrate-energy``).

The estimate of a local answer must be a property of the work (the same tokens, the same Wh) rather than
of how busy the machine was: CPU seconds under contention include llama.cpp's spin-waits and the other
processes' cache pressure. So the costs are measured once, on a quiet host, as CPU seconds per unit, and
the serving path prices each request from its calls and tokens. Each configuration is run a few times and
its *least* CPU time kept (contention only ever adds), then CPU seconds = a + b x prompt + c x output is
fitted by non-negative least squares. Joules = CPU seconds x ``watts_per_thread`` (docs/ENERGY.md).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from router.core.backend import Backend
from router.core.errors import FrugalError
from router.core.types import CompletionRequest, Message

#: (user text, max_tokens) pairs for the small model: short to long prompts crossed with short to long answers.
#: The instruction asks for a long text so that the answer runs to ``max_tokens``: the output coefficient is only
#: determined when output lengths vary as widely as prompt lengths do.
_TOPIC = ("The city council met on Tuesday to discuss the new cycling lanes, the budget for the library, "
          "and a proposal to plant two hundred trees along the river. ")
SMALL_SHAPES: tuple[tuple[str, int], ...] = tuple(
    (f"Write a long, detailed newspaper article about this meeting, with many paragraphs.\n\n{_TOPIC * repeat}",
     max_tokens)
    for repeat in (1, 6, 18)
    for max_tokens in (8, 96, 256)
)

#: Texts for the classifier and the search tier: one call each.
PROBES: tuple[str, ...] = (
    "What is the capital of Australia?", "Who wrote the novel Nineteen Eighty-Four?",
    "Rewrite this sentence in a formal tone: gonna be late, sorry", "When did the Berlin Wall fall?",
    "Prove that the square root of two is irrational.", "Translate 'good morning' into Spanish.",
    "How many moons does Mars have?", "Write a Python function that merges two sorted lists.",
)


@dataclass(frozen=True)
class WorkSample:
    """One measured call: its tokens and the least CPU time seen over its repeats."""

    prompt_tokens: int
    output_tokens: int
    cpu_seconds: float


def fit_per_unit(samples: Sequence[WorkSample]) -> tuple[float, float, float, float]:
    """(CPU s per call, per prompt token, per output token, median relative residual), non-negative least squares."""
    import numpy as np
    from scipy.optimize import nnls

    if len(samples) < 3:
        raise FrugalError(f"need at least 3 samples to fit per-call and per-token costs, got {len(samples)}")
    design = np.array([[1.0, s.prompt_tokens, s.output_tokens] for s in samples])
    target = np.array([s.cpu_seconds for s in samples])
    coef, _ = nnls(design, target)
    fitted = design @ coef
    residual = float(np.median(np.abs(fitted - target) / np.maximum(target, 1e-9)))
    return float(coef[0]), float(coef[1]), float(coef[2]), residual


async def measure_model(backend: Backend, *, repeats: int = 3,
                        shapes: Sequence[tuple[str, int]] = SMALL_SHAPES) -> list[WorkSample]:
    """Run each shape ``repeats`` times (a fresh prefix each time, so no prompt is cached) and keep its least CPU."""
    await backend.start()
    samples = []
    for number, (text, max_tokens) in enumerate(shapes):
        runs = []
        for repeat in range(repeats):
            request = CompletionRequest(messages=[Message("user", f"({number}.{repeat}) {text}")],
                                        max_tokens=max_tokens, temperature=0.0)
            completion = await backend.complete(request)
            if completion.cpu_seconds is None:
                raise FrugalError(f"the {backend.tier} backend does not report CPU time: it is not local work")
            runs.append(WorkSample(completion.prompt_tokens, completion.completion_tokens, completion.cpu_seconds))
        samples.append(min(runs, key=lambda s: s.cpu_seconds / max(1, s.prompt_tokens + s.output_tokens)))
    return samples


def measure_calls(call: Callable[[str], Any], *, rounds: int = 25, probes: Sequence[str] = PROBES) -> float:
    """Median thread CPU seconds of one ``call(text)`` (a classification, a search) over ``rounds`` x the probes."""
    call(probes[0])  # first call pays one-off loading
    seconds = []
    for _ in range(rounds):
        for text in probes:
            start = time.thread_time()
            call(text)
            seconds.append(time.thread_time() - start)
    return statistics.median(seconds)


async def measure_search(backend: Backend, *, rounds: int = 10, probes: Sequence[str] = PROBES) -> float:
    """Median CPU seconds the search backend reports for one lookup."""
    await backend.start()
    seconds = []
    for _ in range(rounds):
        for text in probes:
            completion = await backend.complete(CompletionRequest(messages=[Message("user", text)]))
            if completion.cpu_seconds is not None:
                seconds.append(completion.cpu_seconds)
    if not seconds:
        raise FrugalError("the search backend reported no CPU time")
    return statistics.median(seconds)


def provenance(cpu: str, how: str) -> str:
    """The ``measured`` note stored with each figure: machine, date, method."""
    return f"{cpu}; {datetime.now(UTC):%Y-%m-%d}; frugal calibrate-energy ({how})"


def run(coro: Any) -> Any:
    """Run a measurement coroutine to completion."""
    return asyncio.run(coro)
