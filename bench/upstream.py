"""A minimal OpenAI-compatible upstream for benchmarks: answers instantly with a fixed reply.

It stands in for "the same backend called directly" so the gateway benchmark can measure what Frugal
adds on top of a backend, not what the backend costs. Run: ``python bench/upstream.py PORT``.
With ``python bench/upstream.py PORT UPSTREAM_URL`` it is instead a minimal forwarding proxy (one
httpx client, no parsing beyond the body) in front of another upstream: the cost of any extra HTTP
hop, which the gateway benchmark reports as the floor a router could reach.
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
#: A stream sends REPLY in these pieces after an empty role chunk, as OpenAI does, then a finish and a usage chunk.
REPLY_CHUNKS = ("This is a fixed ", "benchmark answer ", "of about a dozen ", "tokens in length.")


async def chat(request: Request) -> Response:
    """Answer any chat completion with REPLY (streaming or not: a role chunk, REPLY_CHUNKS, finish, usage)."""
    body = await request.json()
    created = int(time.time())
    usage = {"prompt_tokens": 12, "completion_tokens": 13, "total_tokens": 25}
    if body.get("stream"):
        async def events():
            base = {"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": created, "model": body["model"]}
            yield f"data: {json.dumps({**base, 'choices': [{'index': 0, 'delta': {'role': 'assistant', 'content': ''}, 'finish_reason': None}]})}\n\n"
            for piece in REPLY_CHUNKS:
                yield f"data: {json.dumps({**base, 'choices': [{'index': 0, 'delta': {'content': piece}, 'finish_reason': None}]})}\n\n"
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


def create_proxy(target: str) -> Starlette:
    """A forwarding proxy to ``target`` (a base URL ending in /v1)."""
    import httpx

    client = httpx.AsyncClient(base_url=target, timeout=60)

    async def forward(request: Request) -> Response:
        upstream = await client.post("/chat/completions", content=await request.body(),
                                     headers={"content-type": "application/json"})
        return Response(upstream.content, status_code=upstream.status_code, media_type="application/json")

    return Starlette(routes=[Route("/v1/chat/completions", forward, methods=["POST"]), Route("/v1/models", models)])


def create_upstream() -> Starlette:
    """The upstream app."""
    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]), Route("/v1/models", models)])


if __name__ == "__main__":
    import uvicorn

    app = create_proxy(sys.argv[2]) if len(sys.argv) > 2 else create_upstream()
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
