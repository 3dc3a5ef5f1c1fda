"""The trained tier classifier: an encoder, surface features and a softmax head, bound by a manifest.

A model folder holds ``manifest.json`` (labels, features, data summary, metrics, seed, and per
encoder variant: the head file and the encoder's id and sha256), one ``head_<variant>.npz`` per
variant, and ``static/`` (the distilled table) for the fast variant. Loading checks the encoder
on disk against the manifest and refuses a mismatch: a head is only valid on the encoder it was
trained on. No pickle anywhere.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from classifiers.config import ClassifierConfig
from classifiers.conversation import ConversationView, conversation_view
from classifiers.encoders import Encoder, SentenceTransformerEncoder, StaticEncoder
from classifiers.features import FEATURE_NAMES, feature_matrix
from classifiers.head import SoftmaxHead
from router.core import TIERS, Message
from router.core.assets import AssetError
from router.core.errors import InvalidRequestError, UnprocessableError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
STATIC_DIR = "static"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Prediction:
    """Tier probabilities for one request, and what the classifier looked at."""

    scores: dict[str, float]
    text: str = ""
    follow_up: bool = False
    latency_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def top(self) -> str:
        """The most probable tier."""
        return max(self.scores, key=self.scores.__getitem__)


def without_search(row: np.ndarray) -> np.ndarray:
    """Scores (search, small, large) with search removed: a follow-up is never a self-contained question."""
    rest = float(row[1:].sum())
    return np.array([0.0, *(row[1:] / rest)]) if rest > 0 else np.array([0.0, 0.0, 1.0])


def _build_static(model_dir: Path, spec: dict[str, Any], config: ClassifierConfig) -> Encoder:
    folder = model_dir / spec.get("path", STATIC_DIR)
    return StaticEncoder(folder, expected_sha256=spec.get("sha256"), threads=config.threads)


def _build_sentence(model_dir: Path, spec: dict[str, Any], config: ClassifierConfig) -> Encoder:
    expected = spec.get("sha256")
    if not expected:
        raise AssetError(f"the manifest in {model_dir} records no encoder sha256; retrain the model")
    return SentenceTransformerEncoder(
        config.encoder, threads=config.threads, expected_sha256=expected, precision=config.precision,
        runtime=config.runtime,
    )


#: How each encoder kind named in a manifest is built.
ENCODER_BUILDERS: dict[str, Callable[[Path, dict[str, Any], ClassifierConfig], Encoder]] = {
    StaticEncoder.kind: _build_static,
    SentenceTransformerEncoder.kind: _build_sentence,
}


class Classifier:
    """Predicts tier probabilities for conversations or bare texts."""

    def __init__(self, encoder: Encoder, head: SoftmaxHead, *, variant: str, manifest: dict[str, Any]):
        self.encoder = encoder
        self.head = head
        self.variant = variant
        self.manifest = manifest
        self._order = [head.labels.index(tier) for tier in TIERS]

    def inputs(self, views: Sequence[ConversationView]) -> np.ndarray:
        """The head's input matrix: embedding and surface features side by side."""
        texts = [view.text for view in views]
        embeddings = self.encoder.encode(texts)
        return np.hstack([embeddings, feature_matrix(texts, [view.follow_up for view in views])])

    def predict_views(self, views: Sequence[ConversationView]) -> list[Prediction]:
        """Score prepared conversation views (one batch through the encoder)."""
        for view in views:
            if not view.text.strip():
                raise InvalidRequestError("nothing to classify: the request has no user text")
        started = time.perf_counter()
        proba = self.head.proba(self.inputs(views), [view.text for view in views])[:, self._order]
        elapsed_ms = (time.perf_counter() - started) * 1000.0 / max(len(views), 1)
        results = []
        for view, row in zip(views, proba, strict=True):
            if view.follow_up:
                row = without_search(row)
            scores: dict[str, float] = {tier: float(p) for tier, p in zip(TIERS, row, strict=True)}
            results.append(Prediction(scores, text=view.text, follow_up=view.follow_up, latency_ms=elapsed_ms))
        return results

    def predict(self, messages: Sequence[Message]) -> Prediction:
        """Tier probabilities for a conversation (see ``classifiers.conversation``)."""
        return self.predict_views([conversation_view(messages)])[0]

    def predict_texts(self, texts: Sequence[str]) -> list[Prediction]:
        """Tier probabilities for single-turn requests, in one batch."""
        return self.predict_views([ConversationView(text=text, follow_up=False) for text in texts])


def read_manifest(model_dir: Path) -> dict[str, Any]:
    """The manifest of a model folder."""
    path = model_dir / MANIFEST
    if not path.exists():
        raise AssetError(f"no classifier model at {model_dir} ({MANIFEST} missing); create one with `frugal train`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise AssetError(f"{path} is not valid JSON: {exc}") from exc
    if manifest.get("format") != FORMAT_VERSION or tuple(manifest.get("features", ())) != FEATURE_NAMES:
        raise AssetError(f"{path} was written by an incompatible version of Frugal; retrain the model")
    return manifest


def load_classifier(config: ClassifierConfig) -> Classifier:
    """Load a trained classifier for the configured variant, verifying its encoder."""
    model_dir = config.resolved_model_dir()
    manifest = read_manifest(model_dir)
    variants = manifest.get("variants", {})
    if config.variant not in variants:
        raise UnprocessableError(
            f"classifier variant {config.variant!r} is not in {model_dir}; valid: {sorted(variants)}",
            param="classifier.variant",
        )
    spec = variants[config.variant]
    encoder_spec = spec["encoder"]
    builder = ENCODER_BUILDERS.get(encoder_spec.get("kind", ""))
    if builder is None:
        raise AssetError(f"unknown encoder kind {encoder_spec.get('kind')!r}; known: {sorted(ENCODER_BUILDERS)}")
    encoder = builder(model_dir, encoder_spec, config)
    if encoder.identity["sha256"] != encoder_spec["sha256"]:  # builders verify; this guards new ones
        raise AssetError(f"encoder sha256 {encoder.identity['sha256']} does not match the manifest")
    head = SoftmaxHead.load(model_dir / spec["head"])
    if sorted(head.labels) != sorted(TIERS):
        raise AssetError(f"the head in {model_dir} predicts {head.labels}, expected {TIERS}")
    log.info("loaded classifier %s (variant %s)", model_dir, config.variant)
    return Classifier(encoder, head, variant=config.variant, manifest=manifest)
