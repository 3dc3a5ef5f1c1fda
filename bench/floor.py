"""The floor for any router in front of an upstream: a pass-through that adds one HTTP hop in Python and nothing else.

Starlette under uvicorn (its automatic choice: httptools on uvloop where they are installed, as Frugal's own
dependencies install them and ``frugal serve`` runs) and one long-lived ``httpx.AsyncClient``: the request body
is forwarded unparsed, a reply with a length is returned whole, a stream is relayed chunk by chunk as it arrives. ``bench/sidebyside.py`` measures Frugal's added latency against this one's.
Run: ``python bench/floor.py PORT UPSTREAM_BASE_URL [aiohttp]`` (the upstream's base URL ends in ``/v1``).
With ``aiohttp`` the hop uses one aiohttp ``ClientSession`` instead (what Frugal's large-tier fast path
uses): the floor a router with the faster client could reach.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


def create_floor(target: str) -> Starlette:
    """The pass-through app forwarding ``POST /v1/chat/completions`` to ``target``."""
    client = httpx.AsyncClient(base_url=target, timeout=60, limits=httpx.Limits(max_connections=256))

    async def forward(request: Request) -> Response:
        outgoing = client.build_request("POST", "/chat/completions", content=await request.body(),
                                        headers={"content-type": "application/json"})
        upstream = await client.send(outgoing, stream=True)
        media_type = upstream.headers.get("content-type")
        if "content-length" in upstream.headers:
            body = await upstream.aread()
            return Response(body, status_code=upstream.status_code, media_type=media_type)
        return StreamingResponse(upstream.aiter_raw(), status_code=upstream.status_code, media_type=media_type,
                                 background=BackgroundTask(upstream.aclose))

    async def models(_: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "bench-upstream", "object": "model"}]})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    return Starlette(routes=[Route("/v1/chat/completions", forward, methods=["POST"]), Route("/v1/models", models)],
                     lifespan=lifespan)


def create_aiohttp_floor(target: str) -> Starlette:
    """The same pass-through with one aiohttp session as the client."""
    import aiohttp

    holder: dict[str, aiohttp.ClientSession] = {}

    async def forward(request: Request) -> Response:
        upstream = await holder["session"].post(target + "/chat/completions", data=await request.body(),
                                                headers={"content-type": "application/json"})
        media_type = upstream.headers.get("content-type")
        if upstream.content_length is not None:
            body = await upstream.read()
            upstream.release()
            return Response(body, status_code=upstream.status, media_type=media_type)
        return StreamingResponse(upstream.content.iter_any(), status_code=upstream.status, media_type=media_type,
                                 background=BackgroundTask(upstream.release))

    async def models(_: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "bench-upstream", "object": "model"}]})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        holder["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
        yield
        await holder["session"].close()

    return Starlette(routes=[Route("/v1/chat/completions", forward, methods=["POST"]), Route("/v1/models", models)],
                     lifespan=lifespan)


if __name__ == "__main__":
    import uvicorn

    factory = create_aiohttp_floor if sys.argv[3:] == ["aiohttp"] else create_floor
    uvicorn.run(factory(sys.argv[2]), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
