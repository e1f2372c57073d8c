"""How many large bodies the REST door's HTTP server holds at once (``gateway/large_bodies.py``):
the line itself, then real sockets against ``HttpServer`` with a small threshold."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
import pytest

from gateway.http_server import HttpServer
from gateway.large_bodies import LargeBodies
from tests.gateway.test_http_server import Echo, closed, read_answer, serving
from tests.support.waiting import until

THRESHOLD = 64 * 1024
BODY = bytes(range(256)) * (4 * 1024 * 1024 // 256)  # 4 MB: more than the socket buffers take


class Waiter:
    def __init__(self) -> None:
        self.admissions = 0

    def admitted(self) -> None:
        self.admissions += 1


def test_places_are_given_in_turn() -> None:
    line = LargeBodies(limit=2)
    first, second, third, fourth = Waiter(), Waiter(), Waiter(), Waiter()
    assert line.claim(first) and line.claim(second)
    assert not line.claim(third) and not line.claim(fourth)
    assert (line.held, line.waiting) == (2, 2)
    line.withdraw(fourth)  # its connection closed while in line
    line.give_back()  # the first place passes to the first in line
    assert (third.admissions, fourth.admissions) == (1, 0)
    assert (line.held, line.waiting) == (2, 0)
    line.give_back()
    line.give_back()
    assert (line.held, line.waiting) == (0, 0)
    line.withdraw(first)  # not in line: nothing happens
    assert line.held == 0


def test_at_least_one_place() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LargeBodies(limit=0)


def post(path: str, body: bytes) -> bytes:
    return (
        b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n"
        % (
            path.encode(),
            len(body),
        )
        + body
    )


async def connect(server: HttpServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", server.port)


def echoed(answer: bytes, body: bytes) -> bool:
    found = orjson.loads(answer)
    return bool(
        found["length"] == len(body) and found["sha256"] == hashlib.sha256(body).hexdigest()
    )


@asynccontextmanager
async def one_place(stall: float = 30.0) -> AsyncIterator[tuple[Echo, LargeBodies, HttpServer]]:
    """A server holding one large body at a time, answering with ``Echo`` (``/gate`` waits)."""
    echo = Echo()
    bound = LargeBodies(limit=1, threshold=THRESHOLD, stall=stall)
    async with serving(echo, large_bodies=bound) as server:
        yield echo, bound, server


def receiving(server: HttpServer, exclude: set[object]) -> object:
    """The server's connection not in ``exclude``, once there is exactly one."""
    others = server.connections - exclude
    return next(iter(others)) if len(others) == 1 else None


async def test_a_large_body_waits_for_a_place_while_small_ones_pass() -> None:
    async with one_place() as (echo, bound, server):
        first_reader, first = await connect(server)
        first.write(post("/gate", BODY))  # holds the place until the gate opens
        await asyncio.wait_for(echo.entered.wait(), 10)
        holder = next(iter(server.connections))
        second_reader, second = await connect(server)
        second.write(post("/upload", BODY))
        await until(lambda: bound.waiting == 1)
        waiting = receiving(server, {holder})
        await asyncio.sleep(0.3)
        # Reading paused: the rest of its body is in the socket buffers, not the gateway.
        assert waiting is not None and waiting._received < len(BODY)  # type: ignore[attr-defined]
        received = waiting._received  # type: ignore[attr-defined]
        # A small body is read and answered meanwhile.
        small_reader, small = await connect(server)
        small.write(post("/small", b"x" * 1000))
        status, _, answer = await read_answer(small_reader)
        assert status == 200 and echoed(answer, b"x" * 1000)
        assert waiting._received == received  # type: ignore[attr-defined]
        echo.gate.set()
        status, _, answer = await read_answer(first_reader)
        assert status == 200 and echoed(answer, BODY)
        status, _, answer = await read_answer(second_reader)
        assert status == 200 and echoed(answer, BODY)
        await until(lambda: bound.held == 0)
        for writer in (first, second, small):
            writer.close()


async def test_a_closed_connection_gives_back_its_place_or_leaves_the_line() -> None:
    async with one_place() as (echo, bound, server):
        _, holder = await connect(server)
        holder.write(post("/gate", BODY))
        await asyncio.wait_for(echo.entered.wait(), 10)
        _, leaver = await connect(server)
        leaver.write(post("/upload", BODY))
        await until(lambda: bound.waiting == 1)
        # Its reading paused, the server sees the close once the place comes to it: it reads
        # the end of the stream then, and gives the place back at once.
        leaver.close()
        echo.gate.set()
        await until(lambda: (bound.held, bound.waiting) == (0, 0))
        holder.close()
        # A holder that goes mid-body (the client sent half) gives its place back.
        half_reader, half = await connect(server)
        half.write(post("/upload", BODY)[: len(BODY) // 2])
        await until(lambda: bound.held == 1)
        next_reader, following = await connect(server)
        following.write(post("/upload", BODY))
        await until(lambda: bound.waiting == 1)
        half.close()
        status, _, answer = await read_answer(next_reader)
        assert status == 200 and echoed(answer, BODY)
        await until(lambda: bound.held == 0)
        following.close()
        assert await closed(half_reader)


async def test_an_upload_that_stops_is_cut_off_while_others_wait() -> None:
    bound = LargeBodies(limit=1, threshold=THRESHOLD, stall=0.3)
    async with serving(large_bodies=bound) as server:
        stalled_reader, stalled = await connect(server)
        stalled.write(post("/upload", BODY)[: THRESHOLD * 2])  # then nothing more
        await until(lambda: bound.held == 1)
        reader, writer = await connect(server)
        writer.write(post("/upload", BODY))
        status, _, answer = await read_answer(reader)  # within the sweep's second after 0.3 s
        assert status == 200 and echoed(answer, BODY)
        assert await closed(stalled_reader)
        writer.close()
        stalled.close()


async def test_an_upload_that_pauses_keeps_its_place_when_nobody_waits() -> None:
    bound = LargeBodies(limit=1, threshold=THRESHOLD, stall=0.2)
    async with serving(large_bodies=bound) as server:
        reader, writer = await connect(server)
        request = post("/upload", BODY)
        writer.write(request[: THRESHOLD * 2])
        await asyncio.sleep(1.5)  # a sweep or more, past the stall, with no one in line
        writer.write(request[THRESHOLD * 2 :])
        status, _, answer = await read_answer(reader)
        assert status == 200 and echoed(answer, BODY)
        writer.close()


async def test_pipelined_large_bodies_on_one_connection_hold_one_place() -> None:
    async with one_place() as (echo, bound, server):
        reader, writer = await connect(server)
        writer.write(post("/gate", BODY) + post("/upload", BODY) + post("/upload", b"small"))
        await asyncio.wait_for(echo.entered.wait(), 10)
        assert (bound.held, bound.waiting) == (1, 0)
        echo.gate.set()
        for body in (BODY, BODY, b"small"):
            status, _, answer = await read_answer(reader)
            assert status == 200 and echoed(answer, body)
        await until(lambda: bound.held == 0)
        writer.close()


async def test_an_upload_paused_behind_its_own_answer_is_not_cut_off() -> None:
    """A large body pipelined behind a slow request: the server stopped reading it, so it sends
    nothing, and the sweep must not take that for a stalled client while others wait."""
    async with one_place(stall=0.2) as (echo, bound, server):
        reader, writer = await connect(server)
        writer.write(post("/gate", b"small") + post("/upload", BODY))
        await asyncio.wait_for(echo.entered.wait(), 10)
        await until(lambda: bound.held == 1)  # what arrived with the first request's bytes
        other_reader, other = await connect(server)
        other.write(post("/upload", BODY))
        await until(lambda: bound.waiting == 1)
        await asyncio.sleep(1.5)  # a sweep or more, past the stall, with one in line
        echo.gate.set()
        for body in (b"small", BODY):
            status, _, answer = await read_answer(reader)
            assert status == 200 and echoed(answer, body)
        status, _, answer = await read_answer(other_reader)
        assert status == 200 and echoed(answer, BODY)
        writer.close()
        other.close()
