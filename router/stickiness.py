"""Conversation stickiness: a follow-up never lands on a tier below the one its conversation needed.

"Commit it", "and why?" or "now in Rust" after an answer from the large tier mean nothing to a small
model, and a search index cannot answer them at all. The API is stateless, so Frugal remembers, per
process, which tier each of its answers needed (a 128-bit hash of the answer text, never the text):
when a client sends a conversation back, the assistant turn before the new question is looked up and
its tier is the floor for the new turn. A degraded answer (the small tier standing in for an
unavailable large one) needed the large tier, and is remembered as such.

An answer this process did not give (another worker, a restart, a conversation begun elsewhere) has no
memory entry; a follow-up turn then gets, as its floor, the tier its earlier question gets on its own
(one more classifier call, for follow-ups only). ``AnswerMemory`` is bounded (LRU, ``capacity``
entries of ~100 bytes each).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from router.core import Message, Tier

DEFAULT_CAPACITY = 100_000


def _key(text: str) -> bytes:
    return hashlib.blake2b(" ".join(text.split()).encode("utf-8", "replace"), digest_size=16).digest()


class AnswerMemory:
    """Which tier each recent answer needed, by a hash of its text (bounded, thread-safe)."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._tiers: OrderedDict[bytes, Tier] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, answer: str, tier: Tier) -> None:
        """Note that ``answer`` needed ``tier`` (empty answers are not remembered)."""
        if not answer.strip() or self.capacity <= 0:
            return
        key = _key(answer)
        with self._lock:
            self._tiers[key] = tier
            self._tiers.move_to_end(key)
            while len(self._tiers) > self.capacity:
                self._tiers.popitem(last=False)

    def tier_of(self, answer: str) -> Tier | None:
        """The tier a remembered answer needed, or None."""
        if not answer.strip():
            return None
        key = _key(answer)
        with self._lock:
            tier = self._tiers.get(key)
            if tier is not None:
                self._tiers.move_to_end(key)  # a conversation still going on stays remembered
            return tier

    def __len__(self) -> int:
        return len(self._tiers)

    def floor(self, messages: Sequence[Message]) -> tuple[Tier, str] | None:
        """The tier the conversation's previous answer needed, and why, when this process gave that answer."""
        prior = prior_turn(messages)
        tier = self.tier_of(prior.answer) if prior is not None else None
        return (tier, f"the conversation's previous answer needed the {tier} tier") if tier else None


@dataclass(frozen=True)
class PriorTurn:
    """The last exchange before the new question: the assistant's answer and the user turn it answered."""

    answer: str
    question: str


def prior_turn(messages: Sequence[Message]) -> PriorTurn | None:
    """The assistant answer just before the last user turn, and the user turn before it (None if no answer)."""
    users = [i for i, m in enumerate(messages) if m.role == "user"]
    if not users:
        return None
    last = users[-1]
    answers = [i for i in range(last) if messages[i].role == "assistant" and messages[i].content.strip()]
    if not answers:
        return None
    answer = answers[-1]
    questions = [i for i in users if i < answer and messages[i].content.strip()]
    return PriorTurn(answer=messages[answer].content, question=messages[questions[-1]].content if questions else "")
