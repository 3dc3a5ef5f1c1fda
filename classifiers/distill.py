"""Distil a sentence-transformers model into a static token-embedding table (the fast path).

This is model2vec's recipe, done here because model2vec's ``distill`` extra would replace the
transformers, tokenizers and huggingface_hub versions the rest of Frugal runs on: embed every
vocabulary token on its own through the transformer (mean pooling, as the model pools
sentences), reduce with PCA, and down-weight frequent tokens with a Zipf/SIF weight. The table is
stored as int8 with one scale per row (a few MB) beside the model's own ``tokenizer.json``.
It runs offline from the local model folder.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from classifiers.encoders import STATIC_TABLE, STATIC_TOKENIZER, resolve_sentence_model
from router.core.assets import AssetError, sha256_of

log = logging.getLogger(__name__)

DEFAULT_DIMS = 128
SIF_COEFFICIENT = 1e-4


def _token_vectors(model_dir: str, batch_size: int) -> tuple[np.ndarray, Path]:
    """Every vocabulary token embedded alone ([CLS] token [SEP], mean pooled)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_dir, device="cpu")
    transformer: Any = model[0]
    tokenizer = transformer.tokenizer
    folder = Path(model_dir)
    if not (folder / STATIC_TOKENIZER).exists():
        raise AssetError(f"{model_dir!r} has no {STATIC_TOKENIZER}; distil from a local model folder")
    auto_model = transformer.auto_model
    vocab_size = len(tokenizer)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    if cls is None or sep is None:
        raise AssetError(f"{model_dir!r}: the tokenizer has no [CLS]/[SEP] tokens; cannot distil it")
    chunks = []
    with torch.inference_mode():
        for start in range(0, vocab_size, batch_size):
            ids = torch.arange(start, min(start + batch_size, vocab_size)).unsqueeze(1)
            batch = torch.cat([torch.full_like(ids, cls), ids, torch.full_like(ids, sep)], dim=1)
            hidden = auto_model(input_ids=batch, attention_mask=torch.ones_like(batch)).last_hidden_state
            chunks.append(hidden.mean(dim=1).numpy())
    return np.concatenate(chunks).astype(np.float32), folder / STATIC_TOKENIZER


def distill_static(
    out_dir: Path, *, encoder: str | None = None, dims: int = DEFAULT_DIMS, batch_size: int = 512, seed: int = 0
) -> dict[str, Any]:
    """Write ``embeddings.npz`` and ``tokenizer.json`` for a static encoder into ``out_dir``."""
    from sklearn.decomposition import PCA

    target, encoder_id, weights = resolve_sentence_model(encoder)
    if weights is None:
        raise AssetError(f"distillation needs a local model folder with weights, got {encoder!r}")
    vectors, tokenizer_file = _token_vectors(target, batch_size)
    dims = min(dims, vectors.shape[1])
    reduced = PCA(n_components=dims, random_state=seed).fit_transform(vectors)
    rank = np.arange(1, len(reduced) + 1, dtype=np.float64)
    proba = (1.0 / rank) / np.sum(1.0 / rank)
    reduced = reduced * (SIF_COEFFICIENT / (SIF_COEFFICIENT + proba))[:, None]
    scale = np.maximum(np.abs(reduced).max(axis=1), 1e-8) / 127.0
    quantised = np.round(reduced / scale[:, None]).astype(np.int8)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_dir / STATIC_TABLE, q=quantised, scale=scale.astype(np.float16))
    shutil.copyfile(tokenizer_file, out_dir / STATIC_TOKENIZER)
    info = {
        "kind": "static",
        "distilled_from": encoder_id,
        "distilled_from_sha256": sha256_of(weights),
        "dims": dims,
        "vocab": len(reduced),
        "method": "model2vec recipe: per-token mean-pooled output, PCA, SIF 1e-4 Zipf weights, int8 rows",
        "sha256": sha256_of(out_dir / STATIC_TABLE),
    }
    log.info("distilled %s into %s (%d x %d)", encoder_id, out_dir, len(reduced), dims)
    return info
