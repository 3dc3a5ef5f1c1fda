"""What the in-process small tier applies beyond the common parameters: JSON mode and the penalties.

``response_format`` ``json_object`` is enforced with llama.cpp's JSON grammar, ``json_schema`` with a grammar
converted from the schema (about 1 ms for a small schema). The grammar guarantees the shape of every token
but not that the answer ends: one cut by ``max_tokens`` does not parse, and the gate sends it on.
"""

from __future__ import annotations

import json
from typing import Any

from backends.sufficiency import Verdict
from router.core import CompletionRequest
from router.core.capabilities import JSON_OBJECT, JSON_SCHEMA
from router.core.errors import InvalidRequestError

#: OpenAI fields beyond messages, sampling and limits that this tier applies (the rest is in ``ignored_params``).
APPLIED_PARAMS = frozenset({"response_format", "frequency_penalty", "presence_penalty"})


def wants_json(request: CompletionRequest) -> bool:
    """Whether the request asked for a JSON response format."""
    return JSON_OBJECT in request.needs or JSON_SCHEMA in request.needs


def extra_params(request: CompletionRequest) -> dict[str, Any]:
    """``create_completion`` arguments for the penalties and the JSON grammar the request asked for."""
    params: dict[str, Any] = {}
    for name in ("frequency_penalty", "presence_penalty"):
        value = request.params.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            params[name] = float(value)
    if wants_json(request):
        params["grammar"] = json_grammar(request.params.get("response_format"))
    return params


def json_grammar(response_format: Any) -> Any:
    """The llama.cpp grammar that enforces a ``response_format``: any JSON object, or the given JSON schema."""
    import llama_cpp
    from llama_cpp import llama_grammar

    schema = None
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
    try:
        if isinstance(schema, dict):
            return llama_cpp.LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        return llama_cpp.LlamaGrammar.from_string(llama_grammar.JSON_GBNF, verbose=False)
    except Exception as exc:
        raise InvalidRequestError(f"the small tier cannot enforce this JSON schema with a grammar: {exc}",
                                  param="response_format.json_schema.schema") from exc


def judge_json(text: str, *, hit_token_limit: bool) -> Verdict:
    """A JSON-mode answer is sufficient when it parses as JSON (the grammar enforced its shape)."""
    try:
        json.loads(text)
    except ValueError:
        reason = "the JSON answer was cut at max_tokens" if hit_token_limit else "the answer is not valid JSON"
        return Verdict(False, 0.0, reason)
    return Verdict(True, 1.0, None)
