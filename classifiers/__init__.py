"""The tier classifier: an embedding model plus a small calibrated head, trained on labelled requests.

Public entry points: ``load_classifier(ClassifierConfig) -> Classifier``, ``Classifier.predict`` /
``predict_texts`` -> ``Prediction``; training and evaluation live in ``classifiers.training`` and
``classifiers.evaluation`` (imported on use: they pull in scikit-learn).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from classifiers.config import ClassifierConfig
    from classifiers.model import Classifier, Prediction

__all__ = ["Classifier", "ClassifierConfig", "Prediction", "load_classifier"]


def load_classifier(config: ClassifierConfig) -> Classifier:
    """Load the configured trained classifier (see ``classifiers.model.load_classifier``)."""
    from classifiers.model import load_classifier as _load

    return _load(config)


def __getattr__(name: str) -> Any:
    if name == "ClassifierConfig":
        from classifiers.config import ClassifierConfig

        return ClassifierConfig
    if name in ("Classifier", "Prediction"):
        from classifiers import model

        return getattr(model, name)
    raise AttributeError(name)
