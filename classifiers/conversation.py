"""What the classifier looks at in a conversation: the last user turn plus bounded context.

A request is routed on what the user is asking now. A short follow-up ("and why?", "make it
shorter", "what about Python?") only makes sense with the turn before it, so when the last user
turn looks like a follow-up and an earlier user turn exists, that earlier turn (bounded) is put in
front of it. A follow-up is never a self-contained question about a fact, so it is also flagged:
the classifier takes the search tier off the table for it (see ``Classifier.predict``).
System messages and assistant answers are not embedded (they describe the product, not the ask).
Erring towards "follow-up" is cheap: it only takes the search tier away from that one turn.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from router.core import Message

#: Characters of the last user turn the classifier reads (head and tail are kept when longer).
MAX_TURN_CHARS = 2000
#: Characters of the earlier user turn prepended to a follow-up.
MAX_CONTEXT_CHARS = 400
#: A user turn of at most this many words after an assistant answer counts as a follow-up.
FOLLOW_UP_MAX_WORDS = 4

_ANAPHORA = re.compile(
    r"^\s*(and|but|so|also|then|why|how come|what about|how about|and why|ok|okay|now|again|more|"
    r"continue|go on|et|mais|pourquoi|y)\b|\b(it|that|this|those|these|them|above|previous|your answer|"
    r"you said|same|again|instead|shorter|longer|an example|examples|elaborate|expand|further|in detail|"
    r"ça|cela)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ConversationView:
    """The text the classifier embeds, and whether it is a follow-up to an earlier exchange."""

    text: str
    follow_up: bool


def bound(text: str, limit: int) -> str:
    """Keep the head and the tail of a text longer than ``limit`` characters."""
    text = text.strip()
    if len(text) <= limit:
        return text
    head = limit * 3 // 4
    return text[:head] + " … " + text[-(limit - head) :]


def is_follow_up(turn: str) -> bool:
    """Whether a user turn, coming after an assistant answer, leans on what came before."""
    words = turn.split()
    return len(words) <= FOLLOW_UP_MAX_WORDS or bool(_ANAPHORA.search(" ".join(words[:12])))


def conversation_view(messages: Sequence[Message]) -> ConversationView:
    """The view of a conversation the classifier scores (see the module docstring)."""
    users = [i for i, m in enumerate(messages) if m.role == "user" and m.content.strip()]
    if not users:
        return ConversationView(text="", follow_up=False)
    last = users[-1]
    turn = bound(messages[last].content, MAX_TURN_CHARS)
    answered_before = any(m.role == "assistant" for m in messages[:last])
    if not answered_before or not is_follow_up(turn):
        return ConversationView(text=turn, follow_up=False)
    earlier = [i for i in users if i < last]
    if earlier:
        context = bound(messages[earlier[-1]].content, MAX_CONTEXT_CHARS)
        turn = f"{context}\n{turn}"
    return ConversationView(text=turn, follow_up=True)
