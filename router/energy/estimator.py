"""Turns measured work into energy, carbon and money estimates, each with a range.

Local work (search, small model, classifier): the component's measured joules per call, prompt token and
output token (``energy.work``) x PUE, so that the same work gets the same estimate on a busy or an idle
machine; CPU seconds x watts per busy thread x PUE is kept beside it as a cross-check, and is the estimate
for work nobody has measured. Grid intensity of the router's zone. Remote models: EcoLogits through the explicit model
table, with the provider's zone. The counterfactual is the configured large model answering the same
request with the median observed large-answer length. See docs/ENERGY.md for sources and boundaries.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import threading
from collections import deque
from typing import Any, Protocol

import router
from router.core.errors import FrugalError
from router.core.estimate import Estimate, Range
from router.energy.config import EnergyConfig
from router.energy.ecologits_adapter import EcoLogitsAdapter, ecologits_version
from router.energy.models_table import ModelSpec, ModelsTable
from router.energy.pricing import PriceBook

UNKNOWN_MODEL = "unknown_model"
LONG_PROMPT = "long_prompt"
UNKNOWN_PRICE = "unknown_price"

COUNTED = [
    ("the router's own work on this host (classification, search, small-model inference), from its measured "
     "joules per call and per token (CPU time x watts where unmeasured)"),
    "energy of remote large-model answers (GPU and server share, EcoLogits), including data-centre PUE",
    "grid emissions of that electricity (usage phase, EcoLogits electricity mixes)",
    "list price of remote tokens (litellm price map)",
]
NOT_COUNTED = [
    "prompt (input) tokens in the large-model energy: EcoLogits models output tokens only; long prompts are flagged",
    "embodied emissions of hardware (manufacturing), for every route",
    "idle power of this host and of the provider's servers between requests",
    "network transfer, client devices, model training, and building the search index",
    "memory, disk and GPU power of this host beyond the watts-per-busy-thread figure",
]
SOURCES = [
    "EcoLogits LLM methodology: https://ecologits.ai/latest/methodology/llm_inference/",
    "EcoLogits electricity mixes (ADEME Base Empreinte, Ember): https://ecologits.ai/latest/methodology/",
    "Epoch AI (2025), How much energy does ChatGPT use? (~0.3 Wh per GPT-4o query)",
    "Google (2025), Measuring the environmental impact of AI inference (Gemini median prompt 0.24 Wh)",
    "Uptime Institute Global Data Center Survey 2023 (average PUE 1.58)",
    "litellm model_prices_and_context_window.json (bundled with the installed litellm)",
]


class ImpactModel(Protocol):
    """An energy source for remote answers: the seam where EcoLogits plugs in (docs/ARCHITECTURE.md)."""

    def validate(self, table: ModelsTable) -> None:
        """Refuse a model table that names models or zones this source does not know."""

    def gwp_kg_per_kwh(self, zone: str) -> float:
        """Grid intensity of a zone, kgCO2e per kWh."""

    def impacts(
        self, spec: ModelSpec, output_tokens: int, latency_s: float | None, zone: str | None
    ) -> tuple[Range, Range, str]:
        """(energy Wh, usage gCO2e, zone used) for one answer of the model ``spec`` names."""


class RunningMedian:
    """The median of the last ``window`` positive integers seen (thread-safe); ``default`` until one is seen."""

    def __init__(self, window: int, default: int) -> None:
        self._lock = threading.Lock()
        self._window: deque[int] = deque(maxlen=window)
        self._sorted: list[int] = []
        self.value = default

    @property
    def count(self) -> int:
        """How many values the window holds."""
        return len(self._window)

    def add(self, value: int) -> None:
        """Add one observation (values <= 0 are ignored)."""
        if value <= 0:
            return
        with self._lock:
            if len(self._window) == self._window.maxlen:
                del self._sorted[bisect.bisect_left(self._sorted, self._window[0])]
            self._window.append(value)
            bisect.insort(self._sorted, value)
            n, mid = len(self._sorted), len(self._sorted) // 2
            self.value = self._sorted[mid] if n % 2 else round((self._sorted[mid - 1] + self._sorted[mid]) / 2)


class EnergyEstimator:
    """Estimates Wh, gCO2e and USD for local work, remote answers and the all-large counterfactual."""

    def __init__(self, config: EnergyConfig, impacts: ImpactModel | None = None) -> None:
        self.config = config
        self.table = ModelsTable.load(config.table_path)
        self._ecologits: ImpactModel = impacts if impacts is not None else EcoLogitsAdapter()
        self._ecologits.validate(self.table)
        self._local_gwp = self._ecologits.gwp_kg_per_kwh(config.zone)  # kg/kWh == g/Wh
        if config.large_zone is not None:
            self._ecologits.gwp_kg_per_kwh(config.large_zone)
        self._prices = PriceBook()
        self._large = RunningMedian(config.observed_window, config.default_output_tokens)
        self._small = RunningMedian(config.observed_window, config.default_output_tokens)

    def warm(self) -> None:
        """Pay the one-off import costs (litellm's price map) now rather than on the first request."""
        self._prices.warm()
        self.counterfactual(0)

    def local(self, cpu_seconds: float, *, model: str | None = None, completion_tokens: int = 0) -> Estimate:
        """Energy of CPU work on this host; cost from ``local_prices`` for ``model`` (0 by default)."""
        if not math.isfinite(cpu_seconds) or cpu_seconds < 0:
            raise FrugalError(f"cpu_seconds must be a finite number >= 0, got {cpu_seconds!r}")
        c = self.config
        hours = cpu_seconds / 3600.0
        energy = Range(hours * c.watts_per_thread * c.pue, hours * c.watts_min * c.pue_min, hours * c.watts_max * c.pue_max)
        co2e = Range(energy.value * self._local_gwp, energy.min * self._local_gwp, energy.max * self._local_gwp)
        per_million = c.local_prices.get(model, 0.0) if model is not None else 0.0
        return Estimate(energy, co2e, per_million * max(0, completion_tokens) / 1e6, ())

    def work(
        self, name: str, *, cpu_seconds: float, prompt_tokens: int = 0, output_tokens: int = 0,
    ) -> tuple[Estimate, float]:
        """Local work of ``name`` (a model or component): (estimate, CPU-time Wh cross-check).

        The estimate comes from the measured per-unit cost when ``name`` has one, else from ``cpu_seconds``.
        """
        by_cpu = self.local(cpu_seconds, model=name, completion_tokens=output_tokens)
        cost = self.config.work_cost(name)
        if cost is None:
            return by_cpu, by_cpu.energy_wh.value
        estimate = self._from_joules(cost.joules(prompt_tokens, output_tokens))
        return dataclasses.replace(estimate, cost_usd=by_cpu.cost_usd), by_cpu.energy_wh.value

    def expected_local(self, name: str, *, prompt_tokens: int, output_tokens: int) -> Range | None:
        """Expected Wh of local work by ``name`` before it runs; None when its cost was never measured."""
        cost = self.config.work_cost(name)
        return None if cost is None else self._from_joules(cost.joules(prompt_tokens, output_tokens)).energy_wh

    def expected_remote(self, model: str, *, prompt_tokens: int, output_tokens: int) -> Range:
        """Expected Wh of a remote answer by ``model`` before it is asked."""
        spec = self.table.resolve(model)
        energy, _co2e, _zone = self._ecologits.impacts(spec, output_tokens, None, self.config.large_zone)
        return energy

    def _from_joules(self, joules: float) -> Estimate:
        """Joules at the machine as an estimate: x PUE, with the watts and PUE bounds as the range."""
        c = self.config
        wh = joules / 3600.0
        energy = Range(wh * c.pue, wh * c.watts_min / c.watts_per_thread * c.pue_min,
                       wh * c.watts_max / c.watts_per_thread * c.pue_max)
        co2e = Range(energy.value * self._local_gwp, energy.min * self._local_gwp, energy.max * self._local_gwp)
        return Estimate(energy, co2e, 0.0, ())

    def remote(self, model: str, *, prompt_tokens: int, completion_tokens: int, latency_s: float | None) -> Estimate:
        """Energy, carbon and list price of one remote answer by ``model`` (a litellm model name)."""
        spec = self.table.resolve(model)
        energy, co2e, _zone = self._ecologits.impacts(spec, completion_tokens, latency_s, self.config.large_zone)
        flags: list[str] = []
        if not spec.known:
            flags.append(UNKNOWN_MODEL)
        if prompt_tokens > self.config.long_prompt_tokens:
            flags.append(LONG_PROMPT)
        cost = self._prices.cost(model, prompt_tokens, completion_tokens)
        if cost is None:
            flags.append(UNKNOWN_PRICE)
            cost = 0.0
        return Estimate(energy, co2e, cost, tuple(flags))

    def counterfactual(self, prompt_tokens: int, *, answer_tokens: int = 0, max_tokens: int | None = None) -> Estimate:
        """The configured large model answering this request (output length: ``counterfactual_tokens``)."""
        return self.remote(
            self.config.counterfactual, prompt_tokens=prompt_tokens,
            completion_tokens=self.counterfactual_tokens(answer_tokens, max_tokens), latency_s=None
        )

    def counterfactual_tokens(self, answer_tokens: int = 0, max_tokens: int | None = None) -> int:
        """Output tokens the large model is taken to write for a request, never more than its ``max_tokens``.

        The median of the large answers seen; before any is seen, the length of the answer actually returned
        (a large model writing the same answer), else ``default_output_tokens``. Without this, a server with no
        large answers yet priced every short local answer against a 300-token large one.
        """
        if self._large.count:
            tokens = self._large.value
        else:
            tokens = answer_tokens if answer_tokens > 0 else self.config.default_output_tokens
        return tokens if max_tokens is None else max(1, min(tokens, max_tokens))

    def observe_large_output(self, tokens: int) -> None:
        """Record the output length of a real large-tier answer (feeds the counterfactual median)."""
        self._large.add(tokens)

    def observe_small_output(self, tokens: int) -> None:
        """Record the output length of a small-tier answer (feeds the expected cost of the next one)."""
        self._small.add(tokens)

    def expected_output_tokens(self, tier: str, max_tokens: int | None) -> int:
        """Output tokens a tier is expected to write: its running median, capped by the request's ``max_tokens``."""
        if tier == "large":  # as the counterfactual: before a large answer is seen, as long as a small one
            return self.counterfactual_tokens(self._small.value if self._small.count else 0, max_tokens)
        median = self._small.value
        return median if max_tokens is None else max(1, min(median, max_tokens))

    def remember(self, ledger: Any) -> None:
        """Seed the median from the large answers the ledger already holds (after a restart, or for a report)."""
        try:
            observed = ledger.recent_large_output_tokens(self.config.observed_window)
        except FrugalError:  # a ledger that cannot be read now leaves the default in place
            return
        for tokens in observed:
            self.observe_large_output(tokens)

    @property
    def counterfactual_output_tokens(self) -> int:
        """Output tokens the counterfactual currently assumes."""
        return self._large.value

    def method(self) -> dict[str, Any]:
        """Versions, zones and assumptions behind every figure, for the report's ``method`` key."""
        c = self.config
        cf = self.table.resolve(c.counterfactual)
        return {
            "versions": {"frugal": router.__version__, "ecologits": ecologits_version(), "litellm": self._prices.version()},
            "zone": c.zone,
            "zone_gco2e_per_kwh": self._local_gwp * 1000.0,
            "large_zone": c.large_zone or "provider's data-centre zone (EcoLogits)",
            "local": {
                "formula": "measured joules per call, prompt token and output token x pue / 3600 "
                "(work never measured: cpu_seconds x watts_per_thread x pue / 3600)",
                "cross_check": "cpu_seconds x watts_per_thread x pue / 3600, per request (ledger cpu_energy_wh)",
                "measured_work": {name: cost.model_dump() for name, cost in self.config.measured_work().items()},
                "watts_per_thread": {"value": c.watts_per_thread, "min": c.watts_min, "max": c.watts_max},
                "pue": {"value": c.pue, "min": c.pue_min, "max": c.pue_max},
            },
            "remote": {
                "model": "EcoLogits LLM inference model (output tokens, active/total parameters, latency)",
                "models_table": self.table.source,
                "long_prompt_tokens": c.long_prompt_tokens,
                "carbon": "usage phase only (energy x grid intensity); embodied emissions excluded",
            },
            "counterfactual": {
                "model": c.counterfactual,
                "resolved_as": cf.ecologits_model and f"{cf.ecologits_provider}/{cf.ecologits_model}" or cf.matched_by,
                "output_tokens": self._large.value,
                "output_tokens_rule": f"median of the last {c.observed_window} large answers; until one is seen, "
                f"the length of the answer returned ({c.default_output_tokens} when unknown); capped by the "
                "request's max_tokens",
                "observed_large_answers": self._large.count,
            },
            "counted": COUNTED,
            "not_counted": NOT_COUNTED,
            "caveats": [
                "EcoLogits leans high for small and well-batched deployments; treat large-tier figures as upper-leaning",
                "every figure is an estimate; min/max bound the stated assumptions, not all uncertainty",
            ],
            "sources": SOURCES,
        }
