"""Lexical features: TF-IDF over word unigrams and bigrams of the text the classifier sees.

A sentence embedding's mean sees topic more than task: "summarise this changelog" and "explain
this changelog" embed alike. The words that name the task ("rewrite", "implement", "prove",
"extract", "itinerary") are what these features add. The vocabulary and its idf are fitted on the
training rows and stored as plain arrays with the head (no pickle). Tokenising and ``transform`` are our
own, so inference needs no scikit-learn import and a stored vocabulary gives the same features whatever
scikit-learn version trained it (``tests/classifiers/test_lexical.py`` checks both against scikit-learn).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scipy import sparse

NGRAMS = (1, 2)
MIN_DF = 2
MAX_TERMS = 20000


#: scikit-learn's default token pattern: runs of two or more word characters.
_TOKEN = re.compile(r"(?u)\b\w\w+\b")


def analyze(text: str) -> list[str]:
    """Lower-cased word unigrams and bigrams, as scikit-learn's ``TfidfVectorizer(ngram_range=(1, 2))``."""
    tokens = _TOKEN.findall(text.lower())
    return tokens + [f"{a} {b}" for a, b in pairwise(tokens)]


@dataclass
class LexicalVocabulary:
    """Terms (word n-grams) with their idf; maps texts to sublinear, L2-normalised TF-IDF rows."""

    terms: tuple[str, ...]
    idf: np.ndarray
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = {term: i for i, term in enumerate(self.terms)}

    @classmethod
    def fit(cls, texts: Sequence[str], *, min_df: int = MIN_DF, max_terms: int = MAX_TERMS) -> LexicalVocabulary:
        """Learn the vocabulary (terms in at least ``min_df`` texts, the most frequent ``max_terms``) and idf."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(ngram_range=NGRAMS, lowercase=True, min_df=min_df, max_features=max_terms,
                                     sublinear_tf=True)
        try:
            vectorizer.fit(list(texts))
        except ValueError:  # no term reaches min_df (a tiny training set): no lexical features
            return cls(terms=(), idf=np.zeros(0))
        return cls(terms=tuple(str(t) for t in vectorizer.get_feature_names_out()),
                   idf=np.asarray(vectorizer.idf_, dtype=np.float64))

    def __len__(self) -> int:
        return len(self.terms)

    def features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """One text's non-zero TF-IDF entries: (1 + log tf) x idf, scaled to unit length; (columns, values)."""
        counts = Counter(self._index[t] for t in analyze(text) if t in self._index)
        columns = np.fromiter(sorted(counts), dtype=np.int64, count=len(counts))
        values = (1.0 + np.log(np.fromiter((counts[j] for j in columns), dtype=np.float64, count=len(columns))))
        values *= self.idf[columns]
        norm = float(np.sqrt(values @ values)) if len(values) else 0.0
        return columns, values / norm if norm > 0 else values

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """The (n, terms) TF-IDF matrix of ``features`` rows (for training; scoring uses ``features``)."""
        from scipy import sparse

        rows = [self.features(text) for text in texts]
        indptr = np.cumsum([0] + [len(columns) for columns, _ in rows])
        indices = np.concatenate([columns for columns, _ in rows]) if rows else np.zeros(0, dtype=np.int64)
        data = np.concatenate([values for _, values in rows]) if rows else np.zeros(0)
        return sparse.csr_matrix((data, indices, indptr), shape=(len(texts), len(self.terms)), dtype=np.float64)
