"""The model that ships in classifiers/models/default: its manifest, clear cases, follow-ups, both variants."""

from __future__ import annotations

import json

import pytest

from classifiers import ClassifierConfig, load_classifier
from classifiers.config import MINILM_SHA256, shipped_model_dir
from classifiers.datasets import PUBLIC_SOURCES
from classifiers.features import FEATURE_NAMES
from classifiers.head import SoftmaxHead
from router.core import Message
from router.core.assets import sha256_of
from router.core.policy import POLICY_THRESHOLDS, Policy

PREVIOUS_LARGE_EXCHANGE = [
    Message("user", "Compare microservices and monoliths for a 5-person startup."),
    Message("assistant", "For a team of five, a modular monolith is usually the better start..."),
]
FOLLOW_UPS = ["and why?", "why?", "ok mais pourquoi ?", "what about for 50 people?", "make it shorter",
              "Can you give me an example?", "continue"]
CLEAR_CASES = {
    "Who wrote Pride and Prejudice?": "search",
    "What is the capital of Japan?": "search",
    "Translate to Spanish: good night and sleep well": "small",
    "hi, how are you?": "small",
    "Summarize this: The council voted to close the old town to cars on weekends starting in July. "
    "Shop owners are divided.": "small",
    "Write a Python function that parses ISO 8601 durations, with unit tests.": "large",
    "A farmer has 3 fields of 12 hectares, yields of 7 tonnes per hectare and sells wheat at 210 euros per "
    "tonne; after 18% costs, what is the profit?": "large",
}


def manifest() -> dict:
    return json.loads((shipped_model_dir() / "manifest.json").read_text())


def test_manifest_binds_heads_to_encoders_and_was_measured_with_the_current_policy() -> None:
    shipped = manifest()
    assert shipped["labels"] == ["search", "small", "large"] and shipped["features"] == list(FEATURE_NAMES)
    assert shipped["default_policy"] == {name: spec.default for name, spec in POLICY_THRESHOLDS.items()}
    assert set(shipped["data"]["by_source"]) == {"seed", *PUBLIC_SOURCES}
    assert sum(sum(t.values()) for t in shipped["data"]["by_source"].values()) == shipped["data"]["rows"]
    static, minilm = shipped["variants"]["static"], shipped["variants"]["minilm"]
    assert static["encoder"]["sha256"] == sha256_of(shipped_model_dir() / "static" / "embeddings.npz")
    assert minilm["encoder"]["sha256"] == MINILM_SHA256
    for spec in (static, minilm):
        assert (shipped_model_dir() / spec["head"]).exists()
        assert spec["metrics"]["n"] == shipped["data"]["rows"]
        head = SoftmaxHead.load(shipped_model_dir() / spec["head"])  # its lexical block is the one recorded
        assert spec["lexical_weight"] > 0 and head.lexicon is not None
        assert len(head.lexicon) == spec["lexical_terms"] and head.lexical_weights is not None
        assert {"accuracy", "under_routing", "kept_off_large", "confusion", "per_tier"} <= set(spec["metrics"])


def test_static_default_routes_clear_cases() -> None:
    classifier = load_classifier(ClassifierConfig())
    policy = Policy()
    assert classifier.variant == "static"
    decided = {text: policy.decide(p).tier for text, p in zip(
        CLEAR_CASES, classifier.predict_texts(list(CLEAR_CASES)), strict=True)}
    assert decided == CLEAR_CASES


def test_follow_ups_after_a_large_answer_never_go_to_search() -> None:
    classifier = load_classifier(ClassifierConfig())
    policy = Policy()
    for turn in FOLLOW_UPS:
        prediction = classifier.predict([*PREVIOUS_LARGE_EXCHANGE, Message("user", turn)])
        assert prediction.follow_up and prediction.scores["search"] == 0.0, turn
        assert policy.decide(prediction).tier != "search", turn


@pytest.mark.slow
def test_minilm_variant_loads_verified_and_bfloat16_agrees_with_float32() -> None:
    exact = load_classifier(ClassifierConfig(variant="minilm", precision="float32"))
    texts = list(CLEAR_CASES)
    reference = exact.predict_texts(texts)
    policy = Policy()
    assert [policy.decide(p).tier for p in reference] == list(CLEAR_CASES.values())
    follow = exact.predict([*PREVIOUS_LARGE_EXCHANGE, Message("user", "and why?")])
    assert policy.decide(follow).tier != "search"
    # bfloat16 runs on every CPU (torch emulates it where the CPU lacks it), so this path is tested everywhere
    fast = load_classifier(ClassifierConfig(variant="minilm", precision="bfloat16"))
    assert (fast.encoder.precision, fast.encoder.runtime) == ("bfloat16", "torch")
    for a, b in zip(reference, fast.predict_texts(texts), strict=True):
        assert a.scores == pytest.approx(b.scores, abs=0.05)


def test_precision_must_be_a_known_value() -> None:
    with pytest.raises(ValueError):
        ClassifierConfig(precision="int4")  # type: ignore[arg-type]
