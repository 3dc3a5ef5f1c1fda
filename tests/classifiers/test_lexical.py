"""The lexical (TF-IDF) block of the classifier head: features, fitting, storage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from classifiers.head import SoftmaxHead, fit_head
from classifiers.lexical import MIN_DF, NGRAMS, LexicalVocabulary, analyze

TEXTS = [
    "rewrite this email politely", "rewrite this sentence more politely please", "translate this email to French",
    "implement a function that merges two sorted lists", "implement a thread-safe queue in Go",
    "prove that the square root of 3 is irrational", "prove the sum of two odd numbers is even",
    "when was the Eiffel tower built", "when did the Berlin wall fall", "who wrote the Odyssey",
]
LABELS = ["small", "small", "small", "large", "large", "large", "large", "search", "search", "search"]
TIERS = ("search", "small", "large")


def test_tokens_match_scikit_learns_analyzer() -> None:
    """Our tokeniser gives scikit-learn's unigrams and bigrams, accents, digits and underscores included."""
    reference = TfidfVectorizer(ngram_range=NGRAMS).build_analyzer()
    for text in [*TEXTS, "Café_au lait x2, naïve-RÉSUMÉ 3.14 ÉCOLE a b", "¿Qué es esto? 東京 の 天気", "", "a"]:
        assert analyze(text) == reference(text), text


def test_transform_matches_scikit_learns_own() -> None:
    """Our stored-vocabulary transform gives scikit-learn's TF-IDF features exactly."""
    vocabulary = LexicalVocabulary.fit(TEXTS)
    reference = TfidfVectorizer(ngram_range=NGRAMS, min_df=MIN_DF, sublinear_tf=True).fit(TEXTS)
    unseen = ["Rewrite: implement, implement, implement!", "nothing known here", "", "Implement IMPLEMENT x"]
    assert vocabulary.terms == tuple(reference.get_feature_names_out())
    assert np.allclose(vocabulary.transform(TEXTS + unseen).toarray(), reference.transform(TEXTS + unseen).toarray())
    assert vocabulary.transform(["nothing known here"]).nnz == 0  # unknown words: an empty row, no error


def test_lexical_head_round_trips_and_needs_the_texts(tmp_path: Path) -> None:
    inputs = np.random.default_rng(0).normal(size=(len(TEXTS), 4))
    head = fit_head(inputs, LABELS, TIERS, c=1.0, seed=0, texts=TEXTS, lexical_weight=10.0)
    assert head.lexicon is not None and head.lexical_weights is not None
    assert head.lexical_weights.shape == (3, len(head.lexicon))
    head.save(tmp_path / "head.npz")
    loaded = SoftmaxHead.load(tmp_path / "head.npz")
    probe = ["implement a queue", "rewrite this politely"]
    assert np.allclose(loaded.proba(inputs[:2], probe), head.proba(inputs[:2], probe))
    with pytest.raises(ValueError, match="texts"):
        loaded.proba(inputs[:2])
    # the words carry the task: with the embedding uninformative (noise), "implement" leans large
    zeros = np.zeros((2, 4))
    proba = loaded.proba(zeros, ["implement it", "rewrite it"])
    assert proba[0, TIERS.index("large")] > proba[1, TIERS.index("large")]
    assert proba[1, TIERS.index("small")] > proba[0, TIERS.index("small")]


def test_without_lexical_weight_or_shared_terms_the_head_is_embedding_only(tmp_path: Path) -> None:
    inputs = np.random.default_rng(1).normal(size=(4, 3))
    plain = fit_head(inputs, ["small", "large", "small", "large"], TIERS, c=1.0, seed=0)
    assert plain.lexicon is None
    distinct = ["alpha", "beta", "gamma", "delta"]  # no term in two texts: nothing lexical to learn
    lonely = fit_head(inputs, ["small", "large", "small", "large"], TIERS, c=1.0, seed=0, texts=distinct,
                      lexical_weight=10.0)
    assert lonely.lexicon is None
    lonely.save(tmp_path / "plain.npz")
    assert SoftmaxHead.load(tmp_path / "plain.npz").lexicon is None
    assert np.allclose(plain.proba(inputs), lonely.proba(inputs))


def test_scoring_with_the_shipped_lexical_head_imports_no_training_library() -> None:
    """The first request must not pay for importing scikit-learn or scipy (seconds on this machine)."""
    import subprocess
    import sys

    code = ("import sys\nfrom classifiers import ClassifierConfig, load_classifier\n"
            "c = load_classifier(ClassifierConfig())\nassert c.head.lexicon is not None\n"
            "c.predict_texts(['rewrite this politely'])\n"
            "print(sorted(m for m in ('sklearn', 'scipy.sparse', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]", out.stderr
