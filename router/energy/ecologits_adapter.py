"""The one place Frugal calls EcoLogits: its LLM impact model, provider data centres and grid mixes.

We do not re-implement EcoLogits' regression, PUE or grid tables; we only choose what to feed it
(from the explicit model table) and cache the answers, because one call costs about 0.5 ms and the
router's whole overhead budget is about 2 ms per request. Only the usage phase is reported
(energy x grid intensity); EcoLogits' embodied (manufacturing) share is left out so that local and
remote work are counted within the same boundary.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from router.core.estimate import Range
from router.energy.models_table import EnergyTableError, ModelSpec, ModelsTable


def ecologits_version() -> str:
    """The installed EcoLogits version."""
    import ecologits

    return str(ecologits.__version__)


def _bounds(value: Any) -> tuple[float, float]:
    """EcoLogits' float-or-RangeValue as (min, max)."""
    if hasattr(value, "min") and hasattr(value, "max"):
        return float(value.min), float(value.max)
    return float(value), float(value)


class EcoLogitsAdapter:
    """Computes usage-phase Wh and gCO2e of an LLM answer with EcoLogits, cached per input."""

    def __init__(self, cache_size: int = 8192) -> None:
        from ecologits.electricity_mix_repository import electricity_mixes
        from ecologits.impacts.llm import compute_llm_impacts
        from ecologits.model_repository import ParametersMoE, models
        from ecologits.tracers.utils import PROVIDER_CONFIG_MAP

        self._mixes = electricity_mixes
        self._compute = compute_llm_impacts
        self._models = models
        self._moe = ParametersMoE
        self._providers = PROVIDER_CONFIG_MAP
        self._cached: Callable[[ModelSpec, int, float | None, str | None], tuple[Range, Range, str]] = lru_cache(
            maxsize=cache_size
        )(self._impacts)

    def gwp_kg_per_kwh(self, zone: str) -> float:
        """The grid intensity of an EcoLogits electricity-mix zone; ``EnergyTableError`` if unknown."""
        mix = self._mixes.find_electricity_mix(zone=zone)
        if mix is None:
            known = ", ".join(sorted(m.zone for m in self._mixes.list_electricity_mixes())[:12])
            raise EnergyTableError(f"unknown electricity-mix zone {zone!r}; use an EcoLogits zone code such as {known}, ...")
        return float(mix.gwp)

    def validate(self, table: ModelsTable) -> None:
        """Check that every table entry names an EcoLogits model, data centre and zone that exist."""
        for name, spec in table.entries():
            try:
                self._inputs(spec)
                if spec.zone is not None:
                    self.gwp_kg_per_kwh(spec.zone)
            except EnergyTableError as exc:
                raise EnergyTableError(f"{table.source}: entry {name!r}: {exc.message}") from exc

    def impacts(
        self, spec: ModelSpec, output_tokens: int, latency_s: float | None, zone: str | None
    ) -> tuple[Range, Range, str]:
        """(energy Wh, usage gCO2e, zone used) for one answer; latency is rounded to 10 ms for the cache."""
        latency = None if latency_s is None or latency_s <= 0 else round(latency_s, 2)
        return self._cached(spec, max(0, int(output_tokens)), latency, zone)

    def _inputs(self, spec: ModelSpec) -> dict[str, Any]:
        from ecologits.utils.range_value import RangeValue

        def as_value(bounds: tuple[float, float]) -> Any:
            low, high = bounds
            return low if low == high else RangeValue(min=low, max=high)

        tps = ttft = None
        if spec.ecologits_provider is not None:
            assert spec.ecologits_model is not None
            model = self._models.find_model(provider=spec.ecologits_provider, model_name=spec.ecologits_model)
            if model is None:
                raise EnergyTableError(
                    f"EcoLogits has no model {spec.ecologits_provider}/{spec.ecologits_model} (ecologits {ecologits_version()})"
                )
            params = model.architecture.parameters
            if isinstance(params, self._moe):
                active, total = params.active, params.total
            else:
                active = total = params
            if model.deployment is not None:
                tps, ttft = model.deployment.tps, model.deployment.ttft
        else:
            assert spec.active_b is not None and spec.total_b is not None
            active, total = as_value(spec.active_b), as_value(spec.total_b)
        provider = self._providers.get(spec.datacenter)
        if provider is None:
            raise EnergyTableError(
                f"unknown datacenter {spec.datacenter!r}; EcoLogits knows {', '.join(sorted(self._providers))}"
            )
        return {
            "model_active_parameter_count": active,
            "model_total_parameter_count": total,
            "datacenter_pue": provider.datacenter_pue,
            "datacenter_wue": provider.datacenter_wue,
            "zone": provider.datacenter_location or "WOR",
            "tps": tps,
            "ttft": ttft,
        }

    def _impacts(
        self, spec: ModelSpec, output_tokens: int, latency_s: float | None, zone: str | None
    ) -> tuple[Range, Range, str]:
        inputs = self._inputs(spec)
        used_zone = zone or spec.zone or inputs.pop("zone")
        inputs.pop("zone", None)
        mix = self._mixes.find_electricity_mix(zone=used_zone)
        if mix is None:
            self.gwp_kg_per_kwh(used_zone)  # raises with the list of zones
            raise AssertionError("unreachable")
        result = self._compute(
            output_token_count=output_tokens,
            request_latency=math.inf if latency_s is None else latency_s,
            if_electricity_mix_adpe=mix.adpe,
            if_electricity_mix_pe=mix.pe,
            if_electricity_mix_gwp=mix.gwp,
            if_electricity_mix_wue=mix.wue,
            **inputs,
        )
        e_min, e_max = _bounds(result.usage.energy.value)
        g_min, g_max = _bounds(result.usage.gwp.value)
        energy = Range((e_min + e_max) / 2 * 1000.0, e_min * 1000.0, e_max * 1000.0)  # kWh -> Wh
        gwp = Range((g_min + g_max) / 2 * 1000.0, g_min * 1000.0, g_max * 1000.0)  # kg -> g
        return energy, gwp, used_zone
