"""The energy estimator against published reference points, its documented ranges and its model table."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.energy import config as energy_config_module
from router.energy.config import DEFAULT_COUNTERFACTUAL_MODEL, EnergyConfig, default_models_table
from router.energy.estimator import LONG_PROMPT, UNKNOWN_MODEL, UNKNOWN_PRICE, EnergyEstimator
from router.energy.models_table import EnergyTableError, ModelsTable


@pytest.fixture(scope="module")
def estimator() -> EnergyEstimator:
    return EnergyEstimator(EnergyConfig())


def test_shipped_table_is_found_from_the_package() -> None:
    path = default_models_table()
    assert path.is_file() and path.parent == Path(energy_config_module.__file__).resolve().parent
    assert path.resolve() == Path(__file__).resolve().parents[2] / "config" / "energy_models.yaml"
    assert EnergyConfig().table_path == path


def test_shipped_table_is_in_the_wheels_package_data() -> None:
    """The table is package data, so a wheel install (no config/ folder) finds it too."""
    import tomllib

    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["router"]
    relative = default_models_table().relative_to(Path(energy_config_module.__file__).resolve().parents[1])
    assert any(relative.match(pattern) for pattern in patterns), (relative, patterns)


def test_gpt4o_mini_300_tokens_is_about_0_02_wh(estimator: EnergyEstimator) -> None:
    est = estimator.remote("gpt-4o-mini", prompt_tokens=100, completion_tokens=300, latency_s=None)
    assert 0.015 <= est.energy_wh.value <= 0.03
    assert est.energy_wh.min <= est.energy_wh.value <= est.energy_wh.max
    assert est.energy_wh.min < est.energy_wh.max  # EcoLogits gives gpt-4o-mini a parameter range
    assert est.flags == ()
    assert est.cost_usd == pytest.approx(100 * 0.15e-6 + 300 * 0.6e-6)  # litellm's bundled gpt-4o-mini price


def test_70b_dense_model_300_tokens_is_about_0_2_wh(estimator: EnergyEstimator) -> None:
    for name in ("groq/llama-3.3-70b-versatile", "ollama/llama3.1:70b", "together_ai/meta-llama/Llama-3.1-70B-Instruct"):
        est = estimator.remote(name, prompt_tokens=50, completion_tokens=300, latency_s=None)
        assert 0.15 <= est.energy_wh.value <= 0.25, name
        assert UNKNOWN_MODEL not in est.flags


def test_energy_grows_with_output_tokens_and_model_size(estimator: EnergyEstimator) -> None:
    def wh(model: str, tokens: int) -> float:
        return estimator.remote(model, prompt_tokens=10, completion_tokens=tokens, latency_s=None).energy_wh.value

    assert wh("gpt-4o-mini", 600) > wh("gpt-4o-mini", 300) > wh("gpt-4o-mini", 30)
    assert wh("gpt-4o", 300) > wh("gpt-4o-mini", 300)


def test_carbon_follows_the_zone() -> None:
    france = EnergyEstimator(EnergyConfig(large_zone="FRA"))
    usa = EnergyEstimator(EnergyConfig(large_zone="USA"))
    fr = france.remote("gpt-4o-mini", prompt_tokens=10, completion_tokens=300, latency_s=None)
    us = usa.remote("gpt-4o-mini", prompt_tokens=10, completion_tokens=300, latency_s=None)
    assert fr.energy_wh == us.energy_wh
    assert fr.co2e_g.value < us.co2e_g.value / 5  # French grid is mostly nuclear


def test_unknown_model_uses_the_flagged_default_range(estimator: EnergyEstimator) -> None:
    est = estimator.remote("acme/brand-new-model", prompt_tokens=10, completion_tokens=300, latency_s=None)
    assert UNKNOWN_MODEL in est.flags and UNKNOWN_PRICE in est.flags
    assert est.cost_usd == 0.0
    assert est.energy_wh.min < est.energy_wh.value < est.energy_wh.max
    assert est.energy_wh.max / est.energy_wh.min > 10  # deliberately wide


def test_long_prompts_are_flagged(estimator: EnergyEstimator) -> None:
    limit = estimator.config.long_prompt_tokens
    short = estimator.remote("gpt-4o-mini", prompt_tokens=limit, completion_tokens=10, latency_s=1.0)
    long = estimator.remote("gpt-4o-mini", prompt_tokens=limit + 1, completion_tokens=10, latency_s=1.0)
    assert LONG_PROMPT not in short.flags and LONG_PROMPT in long.flags


def test_local_work_is_cpu_seconds_times_watts_times_pue() -> None:
    est = EnergyEstimator(EnergyConfig(zone="FRA")).local(9.0)
    assert est.energy_wh.value == pytest.approx(9.0 * 4.0 * 1.2 / 3600)
    assert est.energy_wh.min == pytest.approx(9.0 * 2.0 * 1.0 / 3600)
    assert est.energy_wh.max == pytest.approx(9.0 * 10.0 * 1.6 / 3600)
    assert est.co2e_g.value == pytest.approx(est.energy_wh.value * 0.04144)  # EcoLogits FRA mix, kg/kWh = g/Wh
    assert est.cost_usd == 0.0


def test_local_prices_are_configurable_and_zero_by_default() -> None:
    est = EnergyEstimator(EnergyConfig(local_prices={"smollm2": 0.5}))
    assert est.local(1.0, model="smollm2", completion_tokens=2_000_000).cost_usd == pytest.approx(1.0)
    assert est.local(1.0, model="other", completion_tokens=2_000_000).cost_usd == 0.0


def test_local_rejects_nonsense(estimator: EnergyEstimator) -> None:
    with pytest.raises(Exception, match="cpu_seconds"):
        estimator.local(-1.0)


def test_counterfactual_uses_the_median_observed_large_output() -> None:
    est = EnergyEstimator(EnergyConfig(observed_window=3))
    assert est.config.counterfactual == DEFAULT_COUNTERFACTUAL_MODEL
    first = est.counterfactual(50)
    direct = est.remote(DEFAULT_COUNTERFACTUAL_MODEL, prompt_tokens=50, completion_tokens=300, latency_s=None)
    assert first.energy_wh == direct.energy_wh
    for tokens in (100, 900, 200):
        est.observe_large_output(tokens)
    assert est.counterfactual_output_tokens == 200
    est.observe_large_output(1000)  # window of 3 drops the 100: median of (900, 200, 1000)
    assert est.counterfactual_output_tokens == 900
    assert est.counterfactual(50).energy_wh.value > first.energy_wh.value


def test_method_states_versions_zone_and_boundaries(estimator: EnergyEstimator) -> None:
    method = estimator.method()
    assert method["versions"]["ecologits"].startswith("0.11.")
    assert method["zone"] == "WOR"
    assert method["counterfactual"]["model"] == DEFAULT_COUNTERFACTUAL_MODEL
    assert any("input" in item for item in method["not_counted"])
    assert any("leans high" in item for item in method["caveats"])


def test_table_resolves_prefixes_and_patterns(tmp_path: Path) -> None:
    table = ModelsTable.load(default_models_table())
    assert table.resolve("openai/gpt-4o-mini").ecologits_model == "gpt-4o-mini"
    assert table.resolve("azure/gpt-4o-2024-08-06").ecologits_model == "gpt-4o"
    assert table.resolve("anthropic/claude-3-5-sonnet-20240620").active_b == (44.0, 132.0)
    assert table.resolve("mistral/mistral-large-latest").ecologits_provider == "mistralai"
    assert table.resolve("deepseek/deepseek-chat").zone == "CHN"
    assert table.resolve("openrouter/qwen/qwen-2.5-72b-instruct").active_b == (72.7, 72.7)
    assert not table.resolve("no-such-model").known


@pytest.mark.parametrize(("name", "active"), [
    ("ollama/codellama:13b", 13.0),            # "13b" must not match the 3B Llama pattern
    ("ollama/codellama:7b", 6.74),
    ("ollama/llama3.2:3b", 3.21),
    ("groq/llama-3.1-8b-instant", 8.03),
    ("ollama/qwen2.5:72b", 72.7),
    ("ollama/qwen2.5:7b", 7.6),
    ("together_ai/deepseek-ai/DeepSeek-R1-Distill-Qwen-14B", 14.8),  # a distill, not the 671B model
    ("ollama/deepseek-r1:7b", 7.6),
    ("ollama/deepseek-coder:6.7b", 6.74),
    ("deepseek/deepseek-reasoner", 37.0),
    ("together_ai/deepseek-ai/DeepSeek-R1", 37.0),
])
def test_parameter_sizes_in_names_map_to_that_size(name: str, active: float) -> None:
    spec = ModelsTable.load(default_models_table()).resolve(name)
    assert spec.known and spec.active_b[0] == spec.active_b[1] == active, spec


def test_unlisted_deepseek_names_are_flagged_not_guessed() -> None:
    assert not ModelsTable.load(default_models_table()).resolve("ollama/deepseek-r1:latest").known


def test_the_counterfactual_is_the_configured_large_model(tmp_path: Path) -> None:
    from router.settings import load_settings

    base = {"data_dir": tmp_path, "demo_index": False}
    assert load_settings(None, **base).resolved_energy().counterfactual == "openai/gpt-4o-mini"
    configured = load_settings(None, **base, large={"backend": "litellm", "model": "groq/llama-3.3-70b-versatile"})
    assert configured.resolved_energy().counterfactual == "groq/llama-3.3-70b-versatile"
    explicit = load_settings(None, **base, large={"backend": "litellm", "model": "groq/llama-3.3-70b-versatile"},
                             energy={"counterfactual_model": "openai/gpt-4o"})
    assert explicit.resolved_energy().counterfactual == "openai/gpt-4o"
    seventy_b = EnergyEstimator(configured.resolved_energy()).counterfactual(0).energy_wh.value
    mini = EnergyEstimator(load_settings(None, **base).resolved_energy()).counterfactual(0).energy_wh.value
    assert seventy_b > 3 * mini  # a 70B dense model costs several times gpt-4o-mini per answer


def test_invalid_tables_are_rejected_with_the_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("default: {params: {active: 10}}\nmodels:\n  x: {ecologits: openai/not-a-model}\n")
    with pytest.raises(EnergyTableError, match="not-a-model"):
        EnergyEstimator(EnergyConfig(models_table=bad))
    bad.write_text("default: {params: {active: 10}, ecologits: openai/gpt-4o}\n")
    with pytest.raises(EnergyTableError, match="exactly one"):
        ModelsTable.load(bad)
    with pytest.raises(EnergyTableError, match="not found"):
        ModelsTable.load(tmp_path / "missing.yaml")


def test_config_rejects_inconsistent_bounds_and_unknown_zones() -> None:
    with pytest.raises(ValueError, match="watts_min"):
        EnergyConfig(watts_per_thread=12.0)
    with pytest.raises(ValueError):
        EnergyConfig(pue=0.9)
    with pytest.raises(ValueError):
        EnergyConfig(unknown_key=1)  # type: ignore[call-arg]
    with pytest.raises(EnergyTableError, match="zone"):
        EnergyEstimator(EnergyConfig(zone="XXX"))


def test_calibrate_power_without_codecarbon_says_what_to_install() -> None:
    import importlib.util

    from router.core.errors import FrugalError
    from router.energy.power_measurement import INSTALL_HINT, calibrate_power

    if importlib.util.find_spec("codecarbon") is not None:
        with pytest.raises(FrugalError, match="at least 2 seconds"):
            calibrate_power(0.5)
        return
    with pytest.raises(FrugalError) as info:
        calibrate_power(2.0)
    assert info.value.message == INSTALL_HINT and "frugal-router[power]" in INSTALL_HINT


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini", "anthropic.claude-3-5-sonnet-20240620-v1:0"])
def test_cached_prices_equal_litellms_for_flat_and_tiered_models(model: str) -> None:
    """Issue 23: the price lookup is cached per model, except where the price depends on the prompt's length."""
    import litellm

    from router.energy.pricing import PriceBook

    book = PriceBook()
    for prompt in (1_000, 300_000, 1_000):  # the second and third calls may use the cache
        exact = sum(litellm.cost_per_token(model=model, prompt_tokens=prompt, completion_tokens=100))
        assert book.cost(model, prompt, 100) == pytest.approx(exact, rel=1e-12)
    tiered = any("above" in key for key in litellm.model_cost[model.removeprefix("openai/")])
    assert (model.removeprefix("openai/") in book._rates or model in book._rates) is not tiered
