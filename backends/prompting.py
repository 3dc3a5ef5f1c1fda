"""Turn a ``CompletionRequest`` into chat messages, grounding the answer on retrieved passages.

When the search tier escalates, it hands its best passages to the next tier in
``request.context``; the model then answers from them. The passages go into the system message
(appended to the client's own system message when there is one), numbered and titled, with an
instruction to answer from them and to say so when they do not contain the answer. Long passages
are cut at ``max_passage_chars`` so a few passages fit a small model's context window, and
``fit_prompt`` drops the lowest-ranked passages until the prompt leaves room for the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from router.core import CompletionRequest, Passage

GROUNDING_INSTRUCTION = (
    "Answer the user's question using the numbered passages below. Quote facts from them; "
    "if they do not contain the answer, say that you do not know rather than guessing."
)
DEFAULT_MAX_PASSAGE_CHARS = 1200


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut + " …"


def grounding_text(passages: Sequence[Passage], *, max_passage_chars: int = DEFAULT_MAX_PASSAGE_CHARS) -> str:
    """The system-prompt block that presents ``passages`` as numbered sources."""
    lines = [GROUNDING_INSTRUCTION, ""]
    for number, passage in enumerate(passages, start=1):
        lines.append(f"[{number}] {passage.source.title}: {_clip(passage.text, max_passage_chars)}")
    return "\n".join(lines)


def chat_messages(
    request: CompletionRequest,
    *,
    passages: Sequence[Passage] | None = None,
    max_passage_chars: int = DEFAULT_MAX_PASSAGE_CHARS,
) -> list[dict[str, str]]:
    """The request's messages as OpenAI-style dicts, with ``passages`` (default: its context) grounded."""
    chosen = request.context if passages is None else passages
    messages = [{"role": m.role, "content": m.content} for m in request.messages]
    if not chosen:
        return messages
    block = grounding_text(chosen, max_passage_chars=max_passage_chars)
    if messages and messages[0]["role"] == "system":
        messages[0] = {"role": "system", "content": f"{messages[0]['content']}\n\n{block}"}
    else:
        messages.insert(0, {"role": "system", "content": block})
    return messages


def served_messages(request: CompletionRequest, *, max_passage_chars: int = DEFAULT_MAX_PASSAGE_CHARS) -> list[Any]:
    """The messages for an OpenAI-compatible upstream: the client's as sent (tool turns, content parts, names …),
    with the request's passages grounded in the system message as ``chat_messages`` does."""
    if request.raw_messages is None:
        return chat_messages(request, max_passage_chars=max_passage_chars)
    messages = [dict(m) for m in request.raw_messages]
    if not request.context:
        return messages
    block = grounding_text(request.context, max_passage_chars=max_passage_chars)
    if messages and messages[0].get("role") == "system" and isinstance(messages[0].get("content"), str):
        messages[0]["content"] = f"{messages[0]['content']}\n\n{block}"
    else:
        messages.insert(0, {"role": "system", "content": block})
    return messages


@dataclass
class FittedPrompt:
    """A rendered, tokenized prompt, the passages it kept, and the room left for the answer."""

    tokens: list[int]
    stop: list[str]
    room: int
    passages: list[Passage] = field(default_factory=list)


def fit_prompt(
    request: CompletionRequest,
    render: Callable[[list[dict[str, str]]], tuple[list[int], list[str]]],
    *,
    n_ctx: int,
    min_room: int,
    max_passage_chars: int = DEFAULT_MAX_PASSAGE_CHARS,
) -> FittedPrompt:
    """Render the request (``render`` returns tokens and stop strings), dropping passages until it fits.

    The caller decides what to do when even the passage-free prompt leaves less than ``min_room``.
    """
    passages = list(request.context)
    while True:
        messages = chat_messages(request, passages=passages, max_passage_chars=max_passage_chars)
        tokens, stop = render(messages)
        room = n_ctx - len(tokens)
        if room >= min_room or not passages:
            return FittedPrompt(tokens=tokens, stop=stop, room=room, passages=passages)
        passages.pop()
