"""A minimal OpenAI-compatible upstream for benchmarks: answers instantly with a fixed reply.

It stands in for "the same backend called directly" so the gateway benchmark can measure what Frugal
adds on top of a backend, not what the backend costs. Run: ``python bench/upstream.py PORT``.
"""

from __future__ import annotations

import json
import sys
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

REPLY = "This is a fixed benchmark answer of about a dozen tokens in length."


async def chat(request: Request) -> Response:
    """Answer any chat completion with REPLY (streaming or not)."""
    body = await request.json()
    created = int(time.time())
    usage = {"prompt_tokens": 12, "completion_tokens": 13, "total_tokens": 25}
    if body.get("stream"):
        async def events():  # noqa: ANN202
            base = {"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": created, "model": body["model"]}
            yield f"data: {json.dumps({**base, 'choices': [{'index': 0, 'delta': {'role': 'assistant', 'content': REPLY}, 'finish_reason': None}]})}\n\n"
            yield f"data: {json.dumps({**base, 'choices': [{'index': 0, 'delta': {}, 'finish_reason': 'stop'}]})}\n\n"
            yield f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")
    return JSONResponse({
        "id": "chatcmpl-up", "object": "chat.completion", "created": created, "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": REPLY}, "finish_reason": "stop"}],
        "usage": usage,
    })


async def models(_: Request) -> Response:
    """List one model."""
    return JSONResponse({"object": "list", "data": [{"id": "bench-upstream", "object": "model"}]})


def create_upstream() -> Starlette:
    """The upstream app."""
    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]), Route("/v1/models", models)])


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(create_upstream(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
