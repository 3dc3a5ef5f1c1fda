"""Sentence encoders the classifier can stand on, registered by name.

``minilm`` runs a sentence-transformers model (by default all-MiniLM-L6-v2 from the offline PyPI
package, sha256 verified; any model name or local path through configuration). ``static`` is a
token-embedding table distilled from that same model (see ``classifiers.distill``): a lookup and a
mean instead of six transformer layers, so a decision costs tens of microseconds instead of
milliseconds. Every encoder reports an identity (id and sha256) that a trained head is bound to.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from classifiers.config import MINILM_ID, MINILM_PACKAGE, MINILM_SHA256
from router.core.assets import AssetError, package_dir, sha256_of, verify_sha256

log = logging.getLogger(__name__)

#: Tokens of a request the transformer reads (longer requests are cut; the features keep their size).
MAX_SEQ_TOKENS = 128
STATIC_TABLE = "embeddings.npz"
STATIC_TOKENIZER = "tokenizer.json"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class Encoder(ABC):
    """Turns texts into L2-normalised float32 vectors; subclasses implement ``encode``."""

    kind: str
    identity: dict[str, Any]

    @abstractmethod
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts as an (n, dim) float32 matrix of unit vectors."""


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def resolve_sentence_model(encoder: str | None) -> tuple[str, str, Path | None]:
    """Where a sentence-transformers encoder lives: (what to load, its id, its weights file)."""
    if encoder is None:
        model_dir = package_dir(MINILM_PACKAGE) / "model"
        return str(model_dir), MINILM_ID, model_dir / "model.safetensors"
    local = Path(encoder).expanduser()
    if local.is_dir():
        weights = next((local / n for n in _WEIGHT_FILES if (local / n).exists()), None)
        return str(local), str(local.resolve()), weights
    return encoder, encoder, None


#: x86 CPU flags that mean native bfloat16 matrix arithmetic (Zen 4 and Cooper Lake: avx512_bf16; Sapphire
#: Rapids and later: amx_bf16 too). arm64's ``bf16`` feature is not counted: bf16 was never measured there.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def bf16_in_cpuinfo(cpuinfo: str) -> bool:
    """Whether a ``/proc/cpuinfo`` text lists a native bfloat16 flag on a ``flags`` line."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags" and BF16_FLAGS & set(value.split()):
            return True
    return False


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (``bf16_in_cpuinfo`` of Linux's /proc/cpuinfo)."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return bf16_in_cpuinfo(cpuinfo)


def resolve_precision(precision: str) -> str:
    """The number format ``precision`` ('auto', 'float32' or 'bfloat16') means on this machine."""
    if precision == "auto":
        return "bfloat16" if cpu_has_bf16() else "float32"
    if precision not in ("float32", "bfloat16"):
        raise AssetError(f"unknown precision {precision!r}; valid: auto, float32, bfloat16")
    return precision


def resolve_runtime(runtime: str, precision: str) -> str:
    """The runtime ``runtime`` ('auto', 'torch' or 'onnx') means for a transformer in ``precision``.

    'auto' is ONNX Runtime for float32 when it is installed (same vectors, about 2x faster on one
    thread) and torch otherwise; bfloat16 runs in torch, which has the native bf16 kernels.
    """
    from classifiers.onnx_runtime import onnx_runtime_available

    if runtime not in ("auto", "torch", "onnx"):
        raise AssetError(f"unknown runtime {runtime!r}; valid: auto, torch, onnx")
    if runtime == "onnx" and precision != "float32":
        raise AssetError(f"runtime 'onnx' runs float32 only; precision resolved to {precision!r}")
    if runtime == "onnx" and not onnx_runtime_available():
        raise AssetError("runtime 'onnx' needs: pip install onnxruntime onnx")
    if runtime == "auto":
        return "onnx" if precision == "float32" and onnx_runtime_available() else "torch"
    return runtime


def _hub_weights(name: str) -> Path | None:
    """The cached weights file of a hub model (after sentence-transformers fetched it)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub ships with sentence-transformers
        return None
    for filename in _WEIGHT_FILES:
        found = try_to_load_from_cache(name, filename)
        if isinstance(found, str):
            return Path(found)
    return None


class SentenceTransformerEncoder(Encoder):
    """A sentence-transformers model run on the CPU."""

    kind = "sentence-transformers"

    def __init__(
        self, encoder: str | None = None, *, threads: int = 1, expected_sha256: str | None = None,
        precision: str = "float32", runtime: str = "torch",
    ):
        target, encoder_id, weights = resolve_sentence_model(encoder)
        if encoder is None:
            expected_sha256 = expected_sha256 or MINILM_SHA256
        if weights is not None:
            sha = verify_sha256(weights, expected_sha256)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - both are dependencies
            raise AssetError("the minilm variant needs: pip install sentence-transformers torch") from exc
        torch.set_num_threads(threads)
        try:
            self.model = SentenceTransformer(target, device="cpu")
        except Exception as exc:
            raise AssetError(f"cannot load sentence-transformers model {target!r}: {exc}") from exc
        if weights is None:
            weights = _hub_weights(target)
            if weights is None:
                raise AssetError(f"cannot find the weights of {target!r} to verify them; use a local path")
            sha = verify_sha256(weights, expected_sha256)
        self.model.max_seq_length = MAX_SEQ_TOKENS
        # bfloat16 halves the weight traffic that bounds single-request latency on a CPU with native bf16;
        # embeddings stay within ~1e-3 cosine of float32 (bench/classifier.py measures decision agreement).
        self.precision = resolve_precision(precision)
        if self.precision == "bfloat16":
            self.model = self.model.to(torch.bfloat16)
        self.runtime = resolve_runtime(runtime, self.precision)
        self._onnx = None
        if self.runtime == "onnx":
            from classifiers.onnx_runtime import OnnxTransformer

            self._onnx = OnnxTransformer(self.model, sha, threads=threads)
        self._torch = torch
        self.identity = {"kind": self.kind, "id": encoder_id, "sha256": sha}
        log.info("loaded sentence encoder %s (sha256 %s, %s, %s)", encoder_id, sha[:12], self.precision,
                 self.runtime)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts with the transformer (the model's pooling, unit length)."""
        if self._onnx is not None:
            vectors = self._onnx.encode(list(texts))
            return _normalise(np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1))
        with self._torch.inference_mode():
            vectors = self.model.encode(
                list(texts), batch_size=32, convert_to_numpy=True, normalize_embeddings=True,
                show_progress_bar=False,
            )
        return _normalise(np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1))


class StaticEncoder(Encoder):
    """A distilled token-embedding table: tokenize, look up, average, normalise."""

    kind = "static"

    def __init__(self, folder: Path, *, expected_sha256: str | None = None, threads: int = 1):
        table_path, tokenizer_path = folder / STATIC_TABLE, folder / STATIC_TOKENIZER
        for path in (table_path, tokenizer_path):
            if not path.exists():
                raise AssetError(f"static encoder file missing: {path}; rebuild it with `frugal train`")
        sha = verify_sha256(table_path, expected_sha256)
        from tokenizers import Tokenizer

        with np.load(table_path, allow_pickle=False) as data:
            quantised, scale = data["q"], data["scale"]
        self.table = quantised.astype(np.float32) * scale.astype(np.float32)[:, None]
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.identity = {"kind": self.kind, "sha256": sha, "dim": int(self.table.shape[1])}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts as the normalised mean of their token vectors."""
        out = np.zeros((len(texts), self.table.shape[1]), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        for row, encoding in enumerate(encodings):
            ids = encoding.ids[: MAX_SEQ_TOKENS * 4]
            if ids:
                out[row] = self.table[ids].mean(axis=0)
        return _normalise(out)


def static_identity(folder: Path) -> dict[str, Any]:
    """The identity a head trained on a static table records (its file's sha256)."""
    return {"kind": StaticEncoder.kind, "sha256": sha256_of(folder / STATIC_TABLE)}


EncoderFactory = Callable[..., Encoder]

#: Encoder variants by name; ``load_classifier`` builds the one a configuration asks for.
ENCODERS: dict[str, str] = {"static": StaticEncoder.kind, "minilm": SentenceTransformerEncoder.kind}
