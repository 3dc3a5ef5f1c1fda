"""What the classifier sees in a conversation, and follow-ups never falling to the search tier."""

from __future__ import annotations

from pathlib import Path

from classifiers import ClassifierConfig, load_classifier
from classifiers.conversation import MAX_TURN_CHARS, conversation_view
from router.core import Message
from router.core.policy import Policy


def test_single_turn_is_the_last_user_message() -> None:
    view = conversation_view([Message("system", "You are helpful."), Message("user", "Who wrote Hamlet?")])
    assert view.text == "Who wrote Hamlet?" and not view.follow_up


def test_follow_up_gets_the_previous_user_turn() -> None:
    view = conversation_view([
        Message("user", "Explain why the sky is blue."),
        Message("assistant", "Because of Rayleigh scattering..."),
        Message("user", "and why?"),
    ])
    assert view.follow_up
    assert view.text == "Explain why the sky is blue.\nand why?"


def test_new_self_contained_request_after_an_answer_is_not_a_follow_up() -> None:
    view = conversation_view([
        Message("user", "hi"), Message("assistant", "Hello!"),
        Message("user", "Summarize the plot of the novel Dune in three sentences for a school report."),
    ])
    assert not view.follow_up
    assert view.text.startswith("Summarize")


def test_long_turns_are_bounded() -> None:
    view = conversation_view([Message("user", "word " * 5000)])
    assert len(view.text) <= MAX_TURN_CHARS + 5


def test_and_why_after_a_large_answer_does_not_go_to_search(tiny_model: Path) -> None:
    classifier = load_classifier(ClassifierConfig(model_dir=tiny_model))
    policy = Policy()
    conversation = [
        Message("user", "Compare microservices and monoliths for a 5-person startup."),
        Message("assistant", "For a team of five, a modular monolith is usually the better start..."),
        Message("user", "and why?"),
    ]
    prediction = classifier.predict(conversation)
    assert prediction.follow_up and prediction.scores["search"] == 0.0
    assert policy.decide(prediction).tier != "search"
    # the same words alone, with no answer before them, are scored as they stand
    alone = classifier.predict([Message("user", "and why?")])
    assert not alone.follow_up
