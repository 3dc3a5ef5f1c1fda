"""Run a sentence-transformers model's transformer through ONNX Runtime: the same vectors, faster on a CPU.

On one CPU thread, torch's eager mode spends most of a short request's time on per-operator overhead;
ONNX Runtime runs the same fused graph in about half the time (bench/classifier.py measures it).
The transformer is exported once, from the sha256-verified weights, with torch's exporter, and cached
under ``<cache>/onnx/<weights sha256>-opset<N>/`` (``FRUGAL_CACHE_DIR``, default ``~/.cache/frugal``), so
later loads only read it. The model's own pooling and normalisation modules then run in torch on the
exported transformer's token embeddings, so any sentence-transformers model keeps its pooling.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from router.core.assets import AssetError, sha256_of

log = logging.getLogger(__name__)

ONNX_OPSET = 17
ONNX_FILE = "model.onnx"
#: The inputs a Hugging Face encoder may take, in the order the export passes them.
_INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


def onnx_runtime_available() -> bool:
    """Whether onnxruntime (to run) and onnx (for torch's exporter to write the graph) are installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def cache_root() -> Path:
    """Where Frugal keeps files it derives on this machine (``FRUGAL_CACHE_DIR`` or ``~/.cache/frugal``)."""
    configured = os.environ.get("FRUGAL_CACHE_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "frugal"


def export_folder(weights_sha256: str) -> Path:
    """The cache folder of the ONNX export of the weights with this sha256."""
    return cache_root() / "onnx" / f"{weights_sha256[:32]}-opset{ONNX_OPSET}"


def _tokenize(model: Any, texts: list[str]) -> dict[str, Any]:
    """The model's input features (``preprocess`` since sentence-transformers 6, ``tokenize`` before)."""
    preprocess = getattr(model, "preprocess", None)
    return dict(preprocess(texts) if preprocess is not None else model.tokenize(texts))


def _transformer(model: Any) -> Any:
    """The Hugging Face module inside a sentence-transformers model's first (Transformer) module."""
    first = model[0]
    auto_model = getattr(first, "auto_model", None)
    if auto_model is None:
        raise AssetError(f"cannot export {type(first).__name__} to ONNX: it is not a Transformer module")
    return auto_model


def export_transformer(model: Any, target: Path) -> None:
    """Export the model's transformer (dynamic batch and length) to ``target``, atomically."""
    import torch

    auto_model = _transformer(model).eval()
    features = _tokenize(model, ["an example request to trace the graph with"])
    names = [name for name in _INPUT_NAMES if name in features]

    class _LastHiddenState(torch.nn.Module):
        def __init__(self, inner: Any):
            super().__init__()
            self.inner = inner

        def forward(self, *inputs: Any) -> Any:
            return self.inner(**dict(zip(names, inputs, strict=True))).last_hidden_state

    target.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(dir=target.parent, suffix=".onnx.partial")
    os.close(handle)
    try:
        axes = {name: {0: "batch", 1: "tokens"} for name in [*names, "token_embeddings"]}
        # the tracer warns about shapes it fixes (a mask as long as its input, no causal mask): both hold here
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _LastHiddenState(auto_model), tuple(features[name] for name in names), scratch,
                input_names=names, output_names=["token_embeddings"], dynamic_axes=axes,
                opset_version=ONNX_OPSET, dynamo=False,
            )
        Path(f"{scratch}.sha256").write_text(sha256_of(Path(scratch)), encoding="utf-8")
        os.replace(f"{scratch}.sha256", f"{target}.sha256")
        os.replace(scratch, target)
    finally:
        for leftover in (scratch, f"{scratch}.sha256"):
            Path(leftover).unlink(missing_ok=True)


def _cached_export_is_intact(target: Path) -> bool:
    """Whether a cached export exists and still has the sha256 recorded when it was written."""
    recorded = Path(f"{target}.sha256")
    if not target.exists() or not recorded.exists():
        return False
    return sha256_of(target) == recorded.read_text(encoding="utf-8").strip()


class OnnxTransformer:
    """A sentence-transformers model whose transformer runs in ONNX Runtime; pooling stays the model's own."""

    def __init__(self, model: Any, weights_sha256: str, *, threads: int = 1):
        import onnxruntime

        self.model = model
        target = export_folder(weights_sha256) / ONNX_FILE
        if not _cached_export_is_intact(target):
            if target.exists():
                log.warning("cached ONNX export %s does not match its recorded sha256; exporting again", target)
            log.info("exporting the sentence encoder to ONNX at %s (once per machine)", target)
            export_transformer(model, target)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = onnxruntime.InferenceSession(str(target), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.pooling = list(model)[1:]  # the modules after the transformer: pooling, normalisation
        self.path = target

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Sentence embeddings of texts (the model's pooling and normalisation), batched by length."""
        import torch

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[np.ndarray] = [np.empty(0)] * len(texts)
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            features = _tokenize(self.model, [texts[i] for i in chunk])
            feed = {name: features[name].numpy().astype(np.int64) for name in self.input_names}
            hidden = self.session.run(None, feed)[0]
            features = {**features, "token_embeddings": torch.from_numpy(hidden)}
            with torch.inference_mode():
                for module in self.pooling:
                    features = module(features)
            vectors = features["sentence_embedding"].numpy()
            for row, index in enumerate(chunk):
                out[index] = vectors[row]
        return np.stack(out) if out else np.zeros((0, 0), dtype=np.float32)
