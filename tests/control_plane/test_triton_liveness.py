"""``EmbeddedTriton.live``, the supervisor's probe for a Triton alive to the OS but hung (the
restart itself: ``test_reconcile_fleet.py``, with a real Triton stopped by SIGSTOP)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from control_plane.triton.embedded import EmbeddedTriton, TritonEndpoints
from tests.support.blackhole import NeverAccepting


def at(tmp_path: Path, http_url: str) -> EmbeddedTriton:
    triton = EmbeddedTriton(tmp_path / "repository", tmp_path)
    triton.endpoints = TritonEndpoints("127.0.0.1:1", http_url, "http://127.0.0.1:1/metrics")
    return triton


def test_live_when_the_health_route_answers_200(tmp_path: Path) -> None:
    asked: list[bytes] = []

    async def main() -> tuple[bool, bool]:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            asked.append(await reader.readline())
            status = b"200 OK" if len(asked) == 1 else b"503 Service Unavailable"
            writer.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        triton = at(tmp_path, f"http://127.0.0.1:{port}")
        try:
            return await triton.live(2.0), await triton.live(2.0)
        finally:
            server.close()

    assert asyncio.run(main()) == (True, False)
    assert asked[0] == b"GET /v2/health/live HTTP/1.1\r\n"


def test_not_live_when_nothing_answers_within_the_timeout(tmp_path: Path) -> None:
    with NeverAccepting() as port:
        triton = at(tmp_path, port.url)
        started = time.monotonic()
        assert not asyncio.run(triton.live(0.5))
        assert time.monotonic() - started < 2
    assert not asyncio.run(at(tmp_path, "http://127.0.0.1:1").live(0.5))  # refused


def test_not_live_before_it_was_started(tmp_path: Path) -> None:
    assert not asyncio.run(EmbeddedTriton(tmp_path / "repository", tmp_path).live(0.5))
