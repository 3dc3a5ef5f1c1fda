"""Turn a ``CompletionRequest`` into chat messages, grounding the answer on retrieved passages.

When the search tier escalates, it hands its best passages to the next tier in
``request.context``; the model then answers from them. The passages go into the system message
(appended to the client's own system message when there is one), numbered and titled, with an
instruction to answer from them and to say so when they do not contain the answer. Long passages
are cut at ``max_passage_chars`` so a few passages fit a small model's context window.
"""

from __future__ import annotations

from collections.abc import Sequence

from backends.base import CompletionRequest, Passage

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
