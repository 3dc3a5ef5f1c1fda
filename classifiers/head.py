"""The classifier head: standardised inputs, a multinomial logistic regression, a temperature.

Kept as plain arrays (saved with ``numpy.savez``, loaded with ``allow_pickle=False``) so a model
file can hold no code, and prediction is one matrix product in numpy. The temperature is fitted on
out-of-fold logits so the probabilities the policy thresholds are calibrated, not overconfident.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from router.assets import AssetError


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


@dataclass
class SoftmaxHead:
    """Linear softmax head over standardised features, with a calibration temperature."""

    labels: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    temperature: float = 1.0

    def logits(self, inputs: np.ndarray) -> np.ndarray:
        """Uncalibrated class logits of an (n, d) input matrix."""
        return ((inputs - self.mean) / self.scale) @ self.weights.T + self.bias

    def proba(self, inputs: np.ndarray) -> np.ndarray:
        """Calibrated class probabilities, columns in ``labels`` order."""
        return softmax(self.logits(inputs) / self.temperature)

    def save(self, path: Path) -> None:
        """Write the head as an .npz of plain arrays."""
        np.savez(
            path, labels=np.asarray(self.labels), mean=self.mean, scale=self.scale, weights=self.weights,
            bias=self.bias, temperature=np.asarray(self.temperature),
        )

    @classmethod
    def load(cls, path: Path) -> SoftmaxHead:
        """Read a head written by ``save``."""
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls(
                    labels=tuple(str(x) for x in data["labels"]), mean=data["mean"], scale=data["scale"],
                    weights=data["weights"], bias=data["bias"], temperature=float(data["temperature"]),
                )
        except (OSError, KeyError, ValueError) as exc:
            raise AssetError(f"cannot read classifier head {path}: {exc}") from exc


def fit_head(
    inputs: np.ndarray, labels: list[str], label_order: tuple[str, ...], *, c: float, seed: int,
    sample_weight: np.ndarray | None = None,
) -> SoftmaxHead:
    """Fit standardisation and a class-balanced multinomial logistic regression."""
    from sklearn.linear_model import LogisticRegression

    mean = inputs.mean(axis=0)
    scale = np.maximum(inputs.std(axis=0), 1e-6)
    target = np.asarray([label_order.index(label) for label in labels])
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=seed)
    model.fit((inputs - mean) / scale, target, sample_weight=sample_weight)
    weights = np.zeros((len(label_order), inputs.shape[1]), dtype=np.float64)
    bias = np.zeros(len(label_order), dtype=np.float64)
    if model.coef_.shape[0] == 1:  # two classes seen: sklearn returns one binary row
        weights[model.classes_[1]], bias[model.classes_[1]] = model.coef_[0], model.intercept_[0]
    else:
        weights[model.classes_], bias[model.classes_] = model.coef_, model.intercept_
    missing = [i for i in range(len(label_order)) if i not in set(model.classes_)]
    bias[missing] = -30.0
    return SoftmaxHead(label_order, mean.astype(np.float32), scale.astype(np.float32), weights, bias)


def fit_temperature(logits: np.ndarray, target: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of out-of-fold logits."""
    from scipy.optimize import minimize_scalar

    def nll(temperature: float) -> float:
        proba = softmax(logits / temperature)
        return float(-np.mean(np.log(np.maximum(proba[np.arange(len(target)), target], 1e-12))))

    return float(minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded").x)
