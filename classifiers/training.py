"""Train the tier classifier: data, encoders, a calibrated head per variant, and the manifest.

Reproducible for a given seed and data: sampling, folds and the solver are seeded. For each
encoder variant the head's regularisation is picked by 5-fold cross-validated log-loss, its
temperature is fitted on the out-of-fold logits, and the out-of-fold routing metrics (with the
default policy) go into the manifest. ``frugal train`` calls ``train``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from classifiers.config import MINILM_ID
from classifiers.conversation import ConversationView, conversation_view
from classifiers.datasets import (
    DEFAULT_CAP,
    Row,
    apply_outcomes,
    load_outcomes,
    load_public,
    load_seed,
    summarise,
)
from classifiers.distill import DEFAULT_DIMS, distill_static
from classifiers.encoders import (
    STATIC_TABLE,
    STATIC_TOKENIZER,
    Encoder,
    SentenceTransformerEncoder,
    StaticEncoder,
)
from classifiers.evaluation import routing_metrics
from classifiers.features import FEATURE_NAMES, feature_matrix
from classifiers.head import SoftmaxHead, fit_head, fit_temperature
from classifiers.model import FORMAT_VERSION, MANIFEST, STATIC_DIR, without_search
from router.core import TIERS, Message
from router.core.errors import UnprocessableError
from router.core.policy import Policy

log = logging.getLogger(__name__)

VARIANTS = ("static", "minilm")
C_GRID = (0.03, 0.1, 0.3, 1.0)
#: Weights of the lexical (TF-IDF) block against the standardised embedding; 0 = embedding and surface only.
LEXICAL_GRID = (0.0, 5.0, 10.0, 20.0)
FOLDS = 5


def row_view(row: Row) -> ConversationView:
    """What the classifier sees of a data row (a conversation view when the row has messages)."""
    if row.get("messages"):
        return conversation_view([Message(role=m["role"], content=m["content"]) for m in row["messages"]])
    return ConversationView(text=row["text"], follow_up=False)


def encode_views(encoder: Encoder, views: Sequence[ConversationView]) -> np.ndarray:
    """The head input matrix of many views (embedding and surface features)."""
    texts = [view.text for view in views]
    return np.hstack([encoder.encode(texts), feature_matrix(texts, [view.follow_up for view in views])])


def calibrated_proba(head: SoftmaxHead, inputs: np.ndarray, views: Sequence[ConversationView]) -> np.ndarray:
    """Probabilities in TIERS order, with the follow-up rule applied (as ``Classifier`` does)."""
    proba = head.proba(inputs, [v.text for v in views])[:, [head.labels.index(t) for t in TIERS]]
    return np.stack([without_search(p) if v.follow_up else p for p, v in zip(proba, views, strict=True)])


def fit_calibrated(
    inputs: np.ndarray, labels: list[str], texts: Sequence[str], *, seed: int,
    lexical_grid: Sequence[float] = LEXICAL_GRID,
) -> tuple[SoftmaxHead, np.ndarray, float, float]:
    """Pick C and the lexical weight by cross-validated log-loss, fit on everything, calibrate.

    Returns the head, the out-of-fold probabilities of the chosen pair (TIERS order), C and the weight.
    """
    from sklearn.model_selection import StratifiedKFold

    target = np.asarray([TIERS.index(label) for label in labels])
    folds = min(FOLDS, int(np.bincount(target, minlength=len(TIERS))[np.unique(target)].min()))
    if folds < 2 or len(set(labels)) < 2:
        raise UnprocessableError("training needs at least two tiers with two examples each")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    best: tuple[float, float, float, np.ndarray] | None = None
    for weight in lexical_grid:
        for c in C_GRID:
            oof_logits = np.zeros((len(labels), len(TIERS)))
            for train_idx, test_idx in splitter.split(inputs, target):
                head = fit_head(inputs[train_idx], [labels[i] for i in train_idx], TIERS, c=c, seed=seed,
                                texts=[texts[i] for i in train_idx], lexical_weight=weight)
                oof_logits[test_idx] = head.logits(inputs[test_idx], [texts[i] for i in test_idx])
            temperature = fit_temperature(oof_logits, target)
            proba = np.exp(oof_logits / temperature - (oof_logits / temperature).max(axis=1, keepdims=True))
            proba /= proba.sum(axis=1, keepdims=True)
            loss = float(-np.mean(np.log(np.maximum(proba[np.arange(len(target)), target], 1e-12))))
            log.info("C=%g lexical=%g temperature=%.2f out-of-fold log-loss %.4f", c, weight, temperature, loss)
            if best is None or loss < best[0]:
                best = (loss, c, weight, oof_logits)
    assert best is not None
    _, c, weight, oof_logits = best
    head = fit_head(inputs, labels, TIERS, c=c, seed=seed, texts=texts, lexical_weight=weight)
    head.temperature = fit_temperature(oof_logits, target)
    oof = np.exp(oof_logits / head.temperature - (oof_logits / head.temperature).max(axis=1, keepdims=True))
    return head, oof / oof.sum(axis=1, keepdims=True), c, weight


def build_encoder(
    variant: str, out_dir: Path, *, encoder: str | None, static_from: Path | None, seed: int
) -> tuple[Encoder, dict[str, Any]]:
    """The encoder a variant trains on, and the manifest entry that binds a head to it."""
    if variant == "static":
        folder = out_dir / STATIC_DIR
        if static_from is not None:
            if static_from.resolve() != folder.resolve():
                folder.mkdir(parents=True, exist_ok=True)
                for name in (STATIC_TABLE, STATIC_TOKENIZER):
                    shutil.copyfile(static_from / name, folder / name)
            info: dict[str, Any] = {"copied_from": str(static_from)}
        else:
            info = distill_static(folder, encoder=encoder, dims=DEFAULT_DIMS, seed=seed)
        static = StaticEncoder(folder)
        spec = {**info, **static.identity, "path": STATIC_DIR}
        spec.pop("copied_from", None)
        return static, spec
    if variant == "minilm":
        model = SentenceTransformerEncoder(encoder)
        return model, dict(model.identity)
    raise UnprocessableError(f"unknown classifier variant {variant!r}; valid: {list(VARIANTS)}")


def load_training_rows(
    seed_dir: Path, shared_data_dir: Path | None, *, seed: int, cap: int = DEFAULT_CAP,
    sources: list[str] | None = None, outcomes: Path | None = None,
) -> tuple[list[Row], dict[str, int]]:
    """Seed rows plus capped public rows (``shared_data_dir=None`` trains on the seed set alone).

    With ``outcomes`` (a ``bench/outcomes.py`` file), public rows that have an outcome take it as their label;
    ``seed_stats`` then also counts them (``outcome_rows``) and the labels they changed (``outcome_changed``).
    """
    rows, seed_stats = load_seed(seed_dir)
    if shared_data_dir is not None:
        public = load_public(shared_data_dir, seed=seed, cap=cap, sources=sources)
        if outcomes is not None:
            changed = apply_outcomes(public, load_outcomes(outcomes))
            seed_stats = {**seed_stats, "outcome_rows": sum(1 for r in public if r.get("label_from") == "outcome"),
                          "outcome_changed": changed}
        rows += public
    return rows, seed_stats


def train(
    *,
    seed_dir: Path,
    shared_data_dir: Path | None,
    out_dir: Path,
    seed: int = 0,
    encoder: str | None = None,
    variant: str | None = None,
    static_from: Path | None = None,
    cap: int = DEFAULT_CAP,
    sources: list[str] | None = None,
    outcomes: Path | None = None,
) -> dict[str, Any]:
    """Train every variant (or one), write the model into ``out_dir`` and return its manifest.

    ``static_from`` reuses an already distilled static table instead of distilling again; ``outcomes``
    relabels the public rows that have an outcome (``load_training_rows``).
    """
    variants = list(VARIANTS) if variant is None else [variant]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise UnprocessableError(f"unknown classifier variant {unknown}; valid: {list(VARIANTS)}")
    rows, seed_stats = load_training_rows(seed_dir, shared_data_dir, seed=seed, cap=cap, sources=sources,
                                          outcomes=outcomes)
    views = [row_view(row) for row in rows]
    labels = [row["tier"] for row in rows]
    out_dir.mkdir(parents=True, exist_ok=True)
    policy = Policy()
    manifest: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "labels": list(TIERS),
        "features": list(FEATURE_NAMES),
        "seed": seed,
        "data": {"rows": len(rows), "by_source": summarise(rows), "seed_set": seed_stats, "cap": cap,
                 "sources": sources or "all", "outcomes": outcomes.name if outcomes is not None else None},
        "variants": {},
        "default_policy": dict(policy.thresholds),
        "created_with": "classifiers.training.train",
        "base_encoder": encoder or MINILM_ID,
    }
    for name in variants:
        started = time.perf_counter()
        model, spec = build_encoder(name, out_dir, encoder=encoder, static_from=static_from, seed=seed)
        inputs = encode_views(model, views)
        head, oof, c, lexical_weight = fit_calibrated(inputs, labels, [v.text for v in views], seed=seed)
        head.save(out_dir / f"head_{name}.npz")
        oof = np.stack([without_search(p) if v.follow_up else p for p, v in zip(oof, views, strict=True)])
        decided = [policy.decide(_Scores(dict(zip(TIERS, map(float, p), strict=True)))).tier for p in oof]
        metrics = routing_metrics(labels, decided)
        metrics["method"] = f"{FOLDS}-fold out-of-fold predictions, default policy"
        manifest["variants"][name] = {
            "encoder": spec, "head": f"head_{name}.npz", "C": c, "lexical_weight": lexical_weight,
            "lexical_terms": len(head.lexicon) if head.lexicon is not None else 0, "temperature": head.temperature,
            "metrics": metrics, "train_seconds": round(time.perf_counter() - started, 1),
        }
        log.info("variant %s: accuracy %.3f under-routing %s", name, metrics["accuracy"], metrics["under_routing"])
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


class _Scores:
    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores
