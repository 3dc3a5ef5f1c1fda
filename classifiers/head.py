"""The classifier head: standardised inputs, a multinomial logistic regression, a temperature.

Kept as plain arrays (saved with ``numpy.savez_compressed``, loaded with ``allow_pickle=False``) so a model
file can hold no code, and prediction is one matrix product in numpy. The temperature is fitted on
out-of-fold logits so the probabilities the policy thresholds are calibrated, not overconfident.
A head may also weigh lexical features of the text (``classifiers.lexical``); their vocabulary is
fitted on the head's own training rows and stored in the same file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from classifiers.lexical import LexicalVocabulary
from router.core.assets import AssetError


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


@dataclass
class SoftmaxHead:
    """Linear softmax head over standardised features (and optional lexical ones), with a temperature."""

    labels: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    temperature: float = 1.0
    lexicon: LexicalVocabulary | None = None
    lexical_weights: np.ndarray | None = None

    def logits(self, inputs: np.ndarray, texts: Sequence[str] | None = None) -> np.ndarray:
        """Uncalibrated class logits of an (n, d) input matrix and, for a lexical head, the n texts."""
        logits = ((inputs - self.mean) / self.scale) @ self.weights.T + self.bias
        if self.lexicon is not None and self.lexical_weights is not None:
            if texts is None or len(texts) != len(inputs):
                raise ValueError("this head also reads the texts: pass one text per input row")
            lexical = np.zeros_like(logits)
            for row, text in enumerate(texts):  # per text: a gather and a small product, no sparse matrix
                columns, values = self.lexicon.features(text)
                lexical[row] = self.lexical_weights[:, columns] @ values
            logits = logits + lexical
        return logits  # type: ignore[no-any-return]

    def proba(self, inputs: np.ndarray, texts: Sequence[str] | None = None) -> np.ndarray:
        """Calibrated class probabilities, columns in ``labels`` order."""
        return softmax(self.logits(inputs, texts) / self.temperature)

    def save(self, path: Path) -> None:
        """Write the head as a compressed .npz of plain arrays (the term list is most of it)."""
        lexical: dict[str, np.ndarray] = {}
        if self.lexicon is not None and self.lexical_weights is not None:
            lexical = {"lexical_terms": np.asarray(self.lexicon.terms, dtype=str), "lexical_idf": self.lexicon.idf,
                       "lexical_weights": self.lexical_weights}
        arrays = {"labels": np.asarray(self.labels), "mean": self.mean, "scale": self.scale, "weights": self.weights,
                  "bias": self.bias, "temperature": np.asarray(self.temperature), **lexical}
        np.savez_compressed(path, **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: Path) -> SoftmaxHead:
        """Read a head written by ``save``."""
        try:
            with np.load(path, allow_pickle=False) as data:
                lexicon, lexical_weights = None, None
                if "lexical_terms" in data:
                    lexicon = LexicalVocabulary(tuple(str(t) for t in data["lexical_terms"]), data["lexical_idf"])
                    lexical_weights = data["lexical_weights"]
                    if lexical_weights.shape != (len(data["labels"]), len(lexicon)):
                        raise ValueError(f"lexical weights of shape {lexical_weights.shape} do not fit the vocabulary")
                return cls(
                    labels=tuple(str(x) for x in data["labels"]), mean=data["mean"], scale=data["scale"],
                    weights=data["weights"], bias=data["bias"], temperature=float(data["temperature"]),
                    lexicon=lexicon, lexical_weights=lexical_weights,
                )
        except (OSError, KeyError, ValueError) as exc:
            raise AssetError(f"cannot read classifier head {path}: {exc}") from exc


def fit_head(
    inputs: np.ndarray, labels: list[str], label_order: tuple[str, ...], *, c: float, seed: int,
    sample_weight: np.ndarray | None = None, texts: Sequence[str] | None = None, lexical_weight: float = 0.0,
) -> SoftmaxHead:
    """Fit standardisation and a class-balanced multinomial logistic regression.

    With ``lexical_weight`` > 0 the head also learns from TF-IDF features of ``texts`` (vocabulary
    fitted here, on these rows only), scaled by that weight against the standardised inputs.
    """
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    mean = inputs.mean(axis=0)
    scale = np.maximum(inputs.std(axis=0), 1e-6)
    target = np.asarray([label_order.index(label) for label in labels])
    design = (inputs - mean) / scale
    lexicon = None
    if lexical_weight > 0:
        if texts is None or len(texts) != len(inputs):
            raise ValueError("a lexical head needs one text per input row")
        lexicon = LexicalVocabulary.fit(texts)
        if len(lexicon) == 0:  # no term in two training texts: nothing lexical to learn
            lexicon = None
        else:
            design = sparse.hstack([sparse.csr_matrix(design), lexical_weight * lexicon.transform(texts)]).tocsr()
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=3000, random_state=seed)
    model.fit(design, target, sample_weight=sample_weight)
    coef = np.zeros((len(label_order), design.shape[1]), dtype=np.float64)
    bias = np.zeros(len(label_order), dtype=np.float64)
    if model.coef_.shape[0] == 1:  # two classes seen: sklearn returns one binary row
        coef[model.classes_[1]], bias[model.classes_[1]] = model.coef_[0], model.intercept_[0]
    else:
        coef[model.classes_], bias[model.classes_] = model.coef_, model.intercept_
    missing = [i for i in range(len(label_order)) if i not in set(model.classes_)]
    bias[missing] = -30.0
    width = inputs.shape[1]
    return SoftmaxHead(label_order, mean.astype(np.float32), scale.astype(np.float32), coef[:, :width], bias,
                       lexicon=lexicon, lexical_weights=lexical_weight * coef[:, width:] if lexicon is not None else None)


def fit_temperature(logits: np.ndarray, target: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of out-of-fold logits."""
    from scipy.optimize import minimize_scalar

    def nll(temperature: float) -> float:
        proba = softmax(logits / temperature)
        return float(-np.mean(np.log(np.maximum(proba[np.arange(len(target)), target], 1e-12))))

    return float(minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded").x)
