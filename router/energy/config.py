"""Settings of the energy method: grid zones, watts per busy thread, PUE, the counterfactual model.

Defaults are chosen to be stated, not flattering: 4 W per busy thread (2-10 W) is the marginal draw
of one busy core of a server or laptop CPU; PUE 1.2 (1.0-1.6) spans a well-run data centre (about 1.1)
to a machine room or office (up to 1.6; Uptime Institute's 2023 survey average is 1.58).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_COUNTERFACTUAL_MODEL = "openai/gpt-4o-mini"
MODELS_TABLE_NAME = "energy_models.yaml"


def default_models_table() -> Path:
    """The shipped model table, ``config/energy_models.yaml``, as packaged beside this module."""
    # In the repository router/energy/energy_models.yaml is a symlink to config/; a wheel holds a copy of the file.
    return Path(__file__).resolve().parent / MODELS_TABLE_NAME


class WorkCost(BaseModel):
    """Measured energy of one local component's work, in joules at the machine (before PUE).

    Measured on an idle host as CPU-seconds per unit x ``watts_per_thread`` (``frugal calibrate-energy``), or with
    a power meter. A request's estimate is then a property of its work (calls and tokens), not of how busy the
    machine was while it ran.
    """

    model_config = ConfigDict(extra="forbid")

    per_call_j: float = Field(default=0.0, ge=0, description="J per call (fixed cost: setup, a search, a classification)")
    per_prompt_token_j: float = Field(default=0.0, ge=0, description="J per prompt token processed")
    per_output_token_j: float = Field(default=0.0, ge=0, description="J per output token generated")
    measured: str = Field(default="", description="where, when and how the figures were measured")

    def joules(self, prompt_tokens: int = 0, output_tokens: int = 0) -> float:
        """Joules at the machine for one call with these token counts."""
        return self.per_call_j + self.per_prompt_token_j * max(0, prompt_tokens) + \
            self.per_output_token_j * max(0, output_tokens)


#: The shipped components' figures, measured by ``frugal calibrate-energy`` on the machine it names (see
#: docs/ENERGY.md, "Local work"). Keys: a small model's name (its GGUF file name without ``.gguf``),
#: ``tantivy`` (one search), ``classifier:static`` / ``classifier:minilm`` (one decision).
MEASURED_WORK: dict[str, WorkCost] = {
    "SmolLM2-135M-Instruct.Q4_1": WorkCost(
        per_call_j=0.0, per_prompt_token_j=0.0266, per_output_token_j=0.0648,
        measured="AMD EPYC (Zen 4), 2 CPUs, llama-cpp-python 0.3.36, n_threads 2; 2026-12-05; frugal calibrate-energy "
        "(two runs, least CPU of 6 per shape x 9 shapes of 84-611 prompt and 8-256 output tokens, NNLS fit, median "
        "residual 4.5 %, x 4 W/thread)"),
    "tantivy": WorkCost(
        per_call_j=0.000297,
        measured="AMD EPYC (Zen 4), 2 CPUs; 2026-12-05; frugal calibrate-energy (median CPU per lookup on the demo "
        "index, least of two runs, x 4 W/thread)"),
    "classifier:static": WorkCost(
        per_call_j=0.000578,
        measured="AMD EPYC (Zen 4), 2 CPUs; 2026-12-05; frugal calibrate-energy (median CPU per decision, least of "
        "two runs, x 4 W/thread)"),
}


class EnergyConfig(BaseModel):
    """How Frugal turns measured work into Wh, gCO2e and USD."""

    model_config = ConfigDict(extra="forbid")

    zone: str = Field(default="WOR", description="EcoLogits electricity-mix zone of local work (FRA, USA, WOR...)")
    large_zone: str | None = Field(default=None, description="zone for remote models; None = provider's zone")
    watts_per_thread: float = Field(default=4.0, gt=0, description="W drawn by one busy CPU thread")
    watts_min: float = Field(default=2.0, gt=0, description="lower bound of watts_per_thread")
    watts_max: float = Field(default=10.0, gt=0, description="upper bound of watts_per_thread")
    pue: float = Field(default=1.2, ge=1.0, description="power usage effectiveness of the local host")
    pue_min: float = Field(default=1.0, ge=1.0, description="lower bound of pue")
    pue_max: float = Field(default=1.6, ge=1.0, description="upper bound of pue")
    counterfactual_model: str | None = Field(
        default=None, description=f"large model of the all-large counterfactual; None = {DEFAULT_COUNTERFACTUAL_MODEL}"
    )
    default_output_tokens: int = Field(default=300, ge=1, description="counterfactual output tokens until one is seen")
    long_prompt_tokens: int = Field(default=2000, ge=1, description="prompts longer than this are flagged")
    models_table: Path | None = Field(default=None, description="model table YAML; None = the shipped one")
    local_prices: dict[str, float] = Field(
        default_factory=dict, description="USD per 1M output tokens for local models by name (default 0)"
    )
    observed_window: int = Field(default=1000, ge=1, description="large answers kept for the median output length")
    work: dict[str, WorkCost] = Field(
        default_factory=dict,
        description="measured J per call / prompt token / output token of local work, by model or component name; "
        "merged over the shipped measurements; work not listed is estimated from its CPU time",
    )

    @model_validator(mode="after")
    def _bounds_hold(self) -> EnergyConfig:
        if not self.watts_min <= self.watts_per_thread <= self.watts_max:
            raise ValueError(
                f"need watts_min <= watts_per_thread <= watts_max, got {self.watts_min}, "
                f"{self.watts_per_thread}, {self.watts_max}"
            )
        if not self.pue_min <= self.pue <= self.pue_max:
            raise ValueError(f"need pue_min <= pue <= pue_max, got {self.pue_min}, {self.pue}, {self.pue_max}")
        return self

    @property
    def counterfactual(self) -> str:
        """The counterfactual model name, with the documented default applied."""
        return self.counterfactual_model or DEFAULT_COUNTERFACTUAL_MODEL

    def work_cost(self, name: str) -> WorkCost | None:
        """The measured per-unit cost of ``name``'s work: configured, else shipped, else None (CPU time is used)."""
        return self.work.get(name) or MEASURED_WORK.get(name)

    def measured_work(self) -> dict[str, WorkCost]:
        """Every measured figure in force, by name: the shipped ones with the configured ones over them."""
        return dict(sorted({**MEASURED_WORK, **self.work}.items()))

    @property
    def table_path(self) -> Path:
        """The model table path, with the shipped default applied."""
        return self.models_table if self.models_table is not None else default_models_table()
