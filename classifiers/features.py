"""Cheap surface features added to the embedding: length, code and maths markers, supplied text.

Sentence embeddings capture what a request is about, but blur how big it is and whether it carries
its own material: "summarise this" followed by three paragraphs is a small-tier job, a bare
"summarise the causes of the First World War" is not. These few counts cost microseconds.
"""

from __future__ import annotations

import math
import re

import numpy as np

FEATURE_NAMES: tuple[str, ...] = (
    "log_chars",
    "log_lines",
    "code_markers",
    "numbers",
    "arithmetic",
    "supplied_text",
    "supplied_share",
    "question_mark",
    "wh_start",
    "follow_up",
)

_CODE = re.compile(
    r"```|\bdef \w+\(|\breturn\b|\bimport \w|#include|\bclass \w+[:({]|=>|\w+\(\)|[{};]\s*$|"
    r"\bSELECT\b|\bfunction\b|\bconsole\.|\bprint\(|\w+\.\w+\(|!=|==|\+=|\bnull\b|\bNone\b|</?\w+>",
    re.MULTILINE,
)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)?%?")
_ARITHMETIC = re.compile(r"\d\s*[-+*/×÷^=]\s*\(?\d|\b[xyn]\s*[\^²=]|\\frac|\bsqrt\b|∫|∑")
_SUPPLIED = re.compile(r"(?::|\n)\s*[\"“«']?(?P<body>[^\n].{60,})", re.DOTALL)
_QUOTED = re.compile(r"[\"“«](?P<body>[^\"”»]{40,})[\"”»]")
_WH = re.compile(
    r"^\s*[¿¡]?\s*(who|whom|whose|what|when|where|which|how (?:many|much|long|old|tall|far|big)|in which|"
    r"qui|quand|où|quel|quelle|quels|combien|wer|wann|wo|welche|wie viele|quién|cuándo|dónde|cuál|cuántos|"
    r"chi|quando|dove|quale|quanti|quem|onde|qual|quantos|wie|wanneer|waar|welke|hoeveel)\b",
    re.IGNORECASE,
)


def supplied_text_length(text: str) -> int:
    """Characters of material the user supplies (after a colon or line break, or quoted)."""
    best = 0
    for pattern in (_SUPPLIED, _QUOTED):
        for match in pattern.finditer(text):
            best = max(best, len(match.group("body")))
    return best


def surface_features(text: str, *, follow_up: bool = False) -> np.ndarray:
    """The feature vector (float32, in ``FEATURE_NAMES`` order) of one request text."""
    chars = len(text)
    supplied = supplied_text_length(text)
    values = (
        math.log1p(chars) / 8.0,
        math.log1p(text.count("\n")) / 3.0,
        math.log1p(len(_CODE.findall(text))) / 2.0,
        math.log1p(len(_NUMBER.findall(text))) / 2.0,
        1.0 if _ARITHMETIC.search(text) else 0.0,
        1.0 if supplied else 0.0,
        supplied / chars if chars else 0.0,
        1.0 if text.rstrip().endswith("?") else 0.0,
        1.0 if _WH.match(text) else 0.0,
        1.0 if follow_up else 0.0,
    )
    return np.asarray(values, dtype=np.float32)


def feature_matrix(texts: list[str], follow_ups: list[bool] | None = None) -> np.ndarray:
    """Stack the features of many texts into an (n, len(FEATURE_NAMES)) matrix."""
    flags = follow_ups if follow_ups is not None else [False] * len(texts)
    if not texts:
        return np.zeros((0, len(FEATURE_NAMES)), dtype=np.float32)
    return np.stack([surface_features(t, follow_up=f) for t, f in zip(texts, flags, strict=True)])
