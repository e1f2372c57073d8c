"""The admin API's ASGI bridge (``tfsgate/admin_door.py``) over the REST door's HTTP server: a
small FastAPI app on a real socket, called with httpx, for what the admin app reads of its scope
(path, query, client) and what it answers (headers, streamed bodies, errors)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, StreamingResponse

from gateway.http_server import HttpServer
from tfsgate.admin_door import asgi_handler


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/items/{name}")
    async def item(name: str, request: Request, limit: int = 0) -> dict[str, object]:
        client = request.client
        return {
            "name": name,
            "limit": limit,
            "query": request.url.query,
            "client": client.host if client else None,
            "raw_path": request.scope["raw_path"].decode(),
        }

    @app.post("/body")
    async def body(request: Request) -> dict[str, int]:
        return {"length": len(await request.body())}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            for part in (b"one,", b"two,", b"three"):
                yield part

        return StreamingResponse(parts(), media_type="text/plain")

    @app.get("/header")
    async def header() -> PlainTextResponse:
        return PlainTextResponse("ok", headers={"x-mine": "1"})

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    return app


@asynccontextmanager
async def serving() -> AsyncIterator[httpx.AsyncClient]:
    server = HttpServer(
        asgi_handler(_app(), lambda: ("127.0.0.1", server.port)), "127.0.0.1", 0, query=True
    )
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            yield client
    finally:
        await server.stop(grace=1.0)


async def test_path_query_and_client_reach_the_app() -> None:
    async with serving() as client:
        answer = await client.get(
            "/items/a%20b", params={"limit": 3, "since": "2026-01-01T00:00+01:00"}
        )
    assert answer.status_code == 200
    assert answer.json() == {
        "name": "a b",
        "limit": 3,
        "query": "limit=3&since=2026-01-01T00%3A00%2B01%3A00",
        "client": "127.0.0.1",
        "raw_path": "/items/a%20b",
    }


async def test_the_body_reaches_the_app_and_bad_queries_are_its_422() -> None:
    async with serving() as client:
        posted = await client.post("/body", content=b"x" * 100_000)
        bad = await client.get("/items/a", params={"limit": "many"})
    assert posted.json() == {"length": 100_000}
    assert bad.status_code == 422


async def test_streamed_answers_are_joined_with_one_content_length() -> None:
    async with serving() as client:
        streamed = await client.get("/stream")
        plain = await client.get("/header")
    assert streamed.content == b"one,two,three"
    assert streamed.headers["content-length"] == "13"
    assert plain.headers.get_list("content-length") == ["2"]
    assert plain.headers["x-mine"] == "1"
    assert plain.headers["content-type"].startswith("text/plain")


async def test_an_app_error_is_500_and_the_connection_serves_on() -> None:
    async with serving() as client:
        failed = await client.get("/boom")
        after = await client.get("/items/x")
    assert failed.status_code == 500
    assert after.status_code == 200
