"""What a chat request needs beyond plain text, and what a tier can honour: the rule, defined once.

A request *needs* a capability when answering it without that capability would silently change its
contract: tool definitions or tool turns (``tools``), a JSON response format (``json_object``,
``json_schema``), token log-probabilities (``logprobs``), non-text content parts or audio output
(``images``, ``audio``, ``files``). Each backend declares what it honours (``Backend.capabilities``); the dispatcher sends a
request only to tiers whose capabilities cover its needs, and refuses it, naming the capability and
the setting that enables it, when none can (``router.core.errors.CapabilityError``). Sampling hints that a local tier
cannot apply are not capabilities: they are applied where they can be and listed in
``frugal.ignored_params`` where they cannot (docs/API.md has the table).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

TOOLS = "tools"
JSON_OBJECT = "json_object"
JSON_SCHEMA = "json_schema"
LOGPROBS = "logprobs"
IMAGES = "images"
AUDIO = "audio"
FILES = "files"

#: Every capability, in the order docs and errors list them.
CAPABILITIES: tuple[str, ...] = (TOOLS, JSON_OBJECT, JSON_SCHEMA, LOGPROBS, IMAGES, AUDIO, FILES)

#: The content-part types a message may hold, and the capability each non-text one needs.
PART_CAPABILITY: dict[str, str | None] = {"text": None, "refusal": None, "image_url": IMAGES, "input_audio": AUDIO,
                                          "file": FILES}

#: Fields that do not change an answer (bookkeeping for OpenAI's platform, or capability switches already routed
#: on): a local tier that does not apply them is not said to ignore them.
NEUTRAL_PARAMS: frozenset[str] = frozenset({
    "metadata", "store", "service_tier", "prompt_cache_key", "safety_identifier", "parallel_tool_calls",
    "tool_choice", "top_logprobs", "logprobs", "response_format", "tools", "functions", "function_call",
})

#: How an operator gives a tier each capability (named in the error when no tier has it).
ENABLE_HINT: dict[str, str] = {
    TOOLS: "serve a model that supports tool calling on the large tier (large.backend: litellm; "
           "declare it with large.options.capabilities if litellm does not know the model)",
    JSON_OBJECT: "small.options.json_mode: true (llama.cpp enforces JSON with a grammar) or a large-tier model "
                 "that supports response_format",
    JSON_SCHEMA: "small.options.json_mode: true (llama.cpp enforces the schema with a grammar) or a large-tier "
                 "model that supports response_format json_schema",
    LOGPROBS: "a large-tier model that returns logprobs (declare it with large.options.capabilities)",
    IMAGES: "a large-tier model that accepts images (declare it with large.options.capabilities: [images, ...])",
    AUDIO: "a large-tier model that accepts audio input (large.options.capabilities: [audio, ...])",
    FILES: "a large-tier model that accepts file parts (large.options.capabilities: [files, ...])",
}


def request_needs(payload: Mapping[str, Any]) -> frozenset[str]:
    """The capabilities an OpenAI chat request body needs (see the module docstring)."""
    needs: set[str] = set()
    tools = payload.get("tools") or payload.get("functions")
    if tools and payload.get("tool_choice") != "none":
        needs.add(TOOLS)
    fmt = payload.get("response_format")
    if isinstance(fmt, Mapping) and fmt.get("type") in (JSON_OBJECT, JSON_SCHEMA):
        needs.add(str(fmt["type"]))
    if payload.get("logprobs") is True or payload.get("top_logprobs"):
        needs.add(LOGPROBS)
    modalities = payload.get("modalities")
    if isinstance(modalities, list) and "audio" in modalities:
        needs.add(AUDIO)
    for message in payload.get("messages") or ():
        if not isinstance(message, Mapping):
            continue
        if message.get("role") in ("tool", "function") or message.get("tool_calls") or message.get("function_call"):
            needs.add(TOOLS)
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                kind = part.get("type") if isinstance(part, Mapping) else None
                capability = PART_CAPABILITY.get(str(kind))
                if capability:
                    needs.add(capability)
    return frozenset(needs)


def ordered(capabilities: Iterable[str]) -> list[str]:
    """Capabilities in the canonical order."""
    chosen = set(capabilities)
    return [name for name in CAPABILITIES if name in chosen] + sorted(chosen - set(CAPABILITIES))


def check_declared(declared: Iterable[str], setting: str) -> frozenset[str]:
    """Validate an operator's capability list (``<tier>.options.capabilities``); ``ValueError`` naming the setting."""
    values = frozenset(declared)
    unknown = sorted(values - set(CAPABILITIES))
    if unknown:
        raise ValueError(f"{setting}: unknown capabilities {unknown}; valid: {list(CAPABILITIES)}")
    return values


def missing_message(missing: Iterable[str], where: str) -> str:
    """'<where> cannot honour tools (enable: …)' for an error message."""
    names = ordered(missing)
    hints = "; ".join(f"{name}: {ENABLE_HINT.get(name, 'not supported')}" for name in names)
    return f"{where} cannot honour {', '.join(names)} (to enable — {hints})"


def param_of(missing: Iterable[str]) -> str:
    """The request parameter that asked for the first missing capability."""
    first = ordered(missing)[0]
    return {TOOLS: "tools", JSON_OBJECT: "response_format", JSON_SCHEMA: "response_format",
            LOGPROBS: "logprobs"}.get(first, "messages")
