"""Schemathesis over real HTTP against the app's own OpenAPI schema: every operation, no 5xx, conforming answers.

Bounded for CI: ``MAX_EXAMPLES`` generated cases per operation (explicit examples and generation, no
shrinking), the admin key sent with every call so the admin routes are exercised past their guard.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer, echo_settings

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 40
ADMIN_KEY = "fuzz-admin-key-0123"
MODELS = ["frugal-auto", "frugal-search", "frugal-small", "frugal-large"]


def _with_model(case: Any, model: str, text: str) -> Any:
    """The generated body with a valid model, one choice and a last user message of generated text."""
    if isinstance(case.body, dict):
        case.body["model"] = model
        case.body.pop("n", None)
        if not isinstance(case.body.get("max_tokens"), int) or not 0 < case.body["max_tokens"] <= 4096:
            case.body.pop("max_tokens", None)
        case.body.pop("max_completion_tokens", None)
        messages = case.body.get("messages")
        case.body["messages"] = [*(messages if isinstance(messages, list) else []), {"role": "user", "content": text}]
    return case


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    import schemathesis

    from router.app import create_app

    settings = echo_settings(Path(tmp_path_factory.mktemp("fuzz")), auth={"admin_key": ADMIN_KEY})
    app = create_app(settings)
    # Load schemathesis's lazily imported modules before this module's server thread starts: pytest rewrites
    # them with ast.parse as they are imported (schemathesis is a pytest plugin), and on CPython 3.11.7 an
    # ast.parse racing another thread's (a traceback being formatted, say) can fail with "SystemError: AST
    # constructor recursion depth mismatch" (cpython gh-106905). See also the fault server's handle_error.
    schemathesis.openapi.from_dict(app.openapi())
    with LiveServer(app) as live:
        yield live


def test_the_chat_schema_is_the_documented_request(server: LiveServer) -> None:
    import httpx

    spec = httpx.get(server.url + "/openapi.json").json()
    body = spec["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"model", "messages", "stream", "max_tokens"} <= set(body["properties"])
    assert body["required"] == ["model", "messages"] or set(body["required"]) >= {"model", "messages"}
    assert "ChatMessageIn" in spec["components"]["schemas"]  # the refs inside the request schema resolve
    assert "$defs" not in body


@pytest.mark.filterwarnings("error::RuntimeWarning")  # numeric overflow on fuzzed input is a validation gap
def test_fuzz_every_operation_without_server_errors(server: LiveServer) -> None:
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {op.label for op in operations}
    assert {"POST /v1/chat/completions", "GET /v1/models", "GET /healthz", "GET /metrics"} <= labels
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    failures: list[str] = []
    calls = {"n": 0, "5xx": 0}
    statuses: dict[str, list[int]] = {}
    def fuzz(operation: object, checks: list[object], known_model: bool = False, negative: bool = False) -> None:
        mode = GenerationMode.NEGATIVE if negative else GenerationMode.POSITIVE
        strategy = operation.as_strategy(generation_mode=mode)  # type: ignore[attr-defined]
        if known_model:  # a random model name is a 404: also fuzz the rest of the body behind a valid one
            texts = st.text(min_size=1, max_size=300).filter(str.strip)
            strategy = st.tuples(strategy, st.sampled_from(MODELS), texts).map(lambda args: _with_model(*args))

        @given(case=strategy)
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def run(case: object) -> None:
            response = case.call(base_url=server.url, headers=headers, timeout=30)  # type: ignore[attr-defined]
            calls["n"] += 1
            calls["5xx"] += response.status_code >= 500
            statuses.setdefault(operation.label, []).append(response.status_code)  # type: ignore[attr-defined]
            case.validate_response(response, checks=checks)  # type: ignore[attr-defined]

        run()

    for operation in operations:
        checks = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]
        try:
            fuzz(operation, checks)
            if len(operation.body) or len(operation.query):  # negative cases need something to break
                fuzz(operation, checks, negative=True)
            if operation.label == "POST /v1/chat/completions":
                fuzz(operation, checks, known_model=True)
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
    assert calls["5xx"] == 0
    assert calls["n"] >= len(operations) * 5, calls
    chat = statuses["POST /v1/chat/completions"]
    assert 200 in chat and any(400 <= code < 500 for code in chat), sorted(set(chat))  # past validation, and refused
