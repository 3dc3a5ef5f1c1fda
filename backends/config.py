"""The configuration every tier's backend receives; backend-specific knobs live in ``options``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class TierConfig(BaseModel):
    """How one tier is served: which registered backend, which model, and its limits."""

    model_config = ConfigDict(extra="forbid")

    backend: str = Field(description="registered backend name: tantivy, llamacpp, litellm, echo")
    enabled: bool = True
    model: str | None = Field(default=None, description="model name, litellm model string or file path")
    api_base: str | None = Field(default=None, description="base URL of an OpenAI-compatible or provider API")
    api_key_env: str | None = Field(default=None, description="name of the env var holding the API key")
    timeout_s: float = Field(default=60.0, gt=0, description="per-request timeout in seconds")
    max_concurrency: int = Field(default=4, ge=1, description="requests served at once; the rest queue")
    options: dict[str, Any] = Field(default_factory=dict, description="backend-specific options")
