"""The REST door's HTTP/1.1 server (``gateway/http_server.py``) over real sockets: raw requests
written by hand where the bytes matter (pipelining, chunks, Expect, malformed input), httpx and the
real ``curl`` where a client's behaviour does."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import hashlib
import shutil
import ssl
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.http_server import PEER, Answer, Headers, HttpServer
from gateway.rest import RestTls, ssl_context
from tests.support.pki import Pki, client_context
from tfsgate.core.ports import free_port

BIG = 20 * 1024 * 1024
_SEEN: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="")


class Echo:
    """Answers what it received; a few paths behave differently."""

    def __init__(self, name: str = "echo") -> None:
        self.name = name
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()

    async def __call__(self, method: str, path: bytes, headers: Headers, body: bytes) -> Answer:
        previous = _SEEN.get()
        _SEEN.set(path.decode())  # a request in the same context would see this
        if path == b"/slow":
            await asyncio.sleep(0.2)
        elif path == b"/gate":
            self.entered.set()
            await self.gate.wait()
        elif path == b"/boom":
            raise RuntimeError("boom")
        elif path == b"/big":
            return 200, [(b"content-type", b"application/octet-stream")], b"x" * BIG
        answer = {
            "server": self.name,
            "method": method,
            "path": path.decode(),
            "length": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
            "headers": {name.decode(): value.decode() for name, value in headers},
            "previous": previous,
        }
        return 200, [(b"content-type", b"application/json")], orjson.dumps(answer)


@asynccontextmanager
async def serving(handler: Any = None, **options: Any) -> AsyncIterator[HttpServer]:
    server = HttpServer(handler or Echo(), "127.0.0.1", options.pop("port", 0), **options)
    await server.start()
    try:
        yield server
    finally:
        await server.stop(grace=1.0)


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines if line)
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 30)
    return int(status_line.split()[1]), headers, body


async def closed(reader: asyncio.StreamReader, timeout: float = 5.0) -> bool:
    """True when the server closed the connection (EOF, or a reset) with nothing more sent."""
    try:
        return await asyncio.wait_for(reader.read(1), timeout) == b""
    except ConnectionResetError:
        return True


def get(path: str, *extra: str) -> bytes:
    return "".join([f"GET {path} HTTP/1.1\r\nHost: t\r\n", *extra, "\r\n"]).encode()


async def test_keep_alive_answers_several_requests_on_one_connection() -> None:
    async with serving() as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        for i in range(3):
            body = b"x" * i
            writer.write(
                b"POST /n/%d HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (i, i, body)
            )
            status, headers, answer = await read_answer(reader)
            assert status == 200 and "connection" not in headers and "date" in headers
            assert orjson.loads(answer)["length"] == i
        assert len(server.connections) == 1
        writer.close()


async def test_pipelined_requests_are_answered_in_order_each_in_its_own_context() -> None:
    async with serving() as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(get("/slow") + get("/fast") + get("/third"))  # one write
        answers = [orjson.loads((await read_answer(reader))[2]) for _ in range(3)]
        assert [a["path"] for a in answers] == ["/slow", "/fast", "/third"]
        assert [a["previous"] for a in answers] == ["", "", ""]  # nothing leaks between them
        writer.close()


@pytest.mark.parametrize("query", [False, True])
async def test_the_query_reaches_the_handler_only_when_asked(query: bool) -> None:
    async with serving(query=query) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(get("/p?a=1&b=%2B") + get("http://t/q?c=2") + get("http://t/r"))
        paths = [orjson.loads((await read_answer(reader))[2])["path"] for _ in range(3)]
        writer.close()
    if query:
        assert paths == ["/p?a=1&b=%2B", "/q?c=2", "/r"]
    else:
        assert paths == ["/p", "/q", "/r"]


async def test_the_client_address_is_in_the_request_context() -> None:
    async def peer(method: str, path: bytes, headers: Headers, body: bytes) -> Answer:
        return 200, [], orjson.dumps(PEER.get())

    async with serving(peer) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        local = writer.get_extra_info("sockname")
        writer.write(get("/a") + get("/b"))  # the second waits in line: its own task
        answers = [orjson.loads((await read_answer(reader))[2]) for _ in range(2)]
        writer.close()
    assert answers == [["127.0.0.1", local[1]]] * 2


async def test_chunked_request_body() -> None:
    async with serving() as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        for chunk in (b"5\r\nhello\r\n", b"6\r\n world\r\n", b"0\r\n\r\n"):
            await asyncio.sleep(0.05)  # separate segments: the body arrives in pieces
            writer.write(chunk)
        status, _, answer = await read_answer(reader)
        assert status == 200
        assert orjson.loads(answer)["sha256"] == hashlib.sha256(b"hello world").hexdigest()
        writer.close()


async def test_expect_100_continue_is_answered_before_the_body() -> None:
    async with serving() as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"body")
        status, _, answer = await read_answer(reader)
        assert status == 200 and orjson.loads(answer)["length"] == 4
        writer.close()


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs the curl binary")
async def test_curl_with_a_large_body_does_not_wait_for_100_continue(tmp_path: Path) -> None:
    """curl sends ``Expect: 100-continue`` with large bodies (above 1 MB for curl 7.88 here, 1 KB
    for older ones) and waits 1 s for the interim answer before sending the body anyway."""
    body = tmp_path / "body.json"
    body.write_bytes(b"7" * 2_000_000)
    async with serving() as server:
        process = await asyncio.create_subprocess_exec(
            "curl", "-sS", "--data-binary", f"@{body}", "-w", "\n%{time_total}",
            f"http://127.0.0.1:{server.port}/v1/models/m:predict",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await process.communicate()
    answer, seconds = out.rsplit(b"\n", 1)
    echoed = orjson.loads(answer)
    assert echoed["headers"]["expect"] == "100-continue" and echoed["length"] == 2_000_000
    assert float(seconds) < 0.5


@pytest.mark.parametrize(
    "request_bytes",
    [b"GET /old HTTP/1.0\r\n\r\n", get("/close", "Connection: close\r\n")],
    ids=["http-1.0", "connection-close"],
)
async def test_closes_after_the_answer_when_asked(request_bytes: bytes) -> None:
    async with serving() as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(request_bytes)
        status, headers, _ = await read_answer(reader)
        assert status == 200 and headers["connection"] == "close"
        assert await closed(reader, 2)
        writer.close()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
    ],
    ids=["request-line", "content-length", "header"],
)
async def test_malformed_request_is_400_and_the_connection_closed(request_bytes: bytes) -> None:
    async with serving() as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(get("/first") + request_bytes)  # the answer ahead is written first
        assert (await read_answer(reader))[0] == 200
        status, headers, body = await read_answer(reader)
        assert status == 400 and headers["connection"] == "close"
        assert orjson.loads(body) == {"error": "Invalid HTTP request received."}
        assert await closed(reader, 2)
        writer.close()


async def test_handler_exception_is_500_in_tf_shape_and_the_connection_lives() -> None:
    async with serving() as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(get("/boom"))
        status, headers, body = await read_answer(reader)
        assert status == 500 and headers["content-type"] == "application/json"
        assert orjson.loads(body) == {"error": "Internal error: boom"}
        writer.write(get("/after"))
        assert (await read_answer(reader))[0] == 200
        writer.close()


async def test_upgrade_is_ignored_and_the_request_answered_over_http_1_1() -> None:
    async with serving() as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(get("/ws", "Connection: Upgrade\r\n", "Upgrade: websocket\r\n"))
        status, _, answer = await read_answer(reader)
        assert status == 200 and orjson.loads(answer)["path"] == "/ws"
        # h2c with a body (llhttp stops parsing at the head): the body is still read.
        writer.write(
            b"POST /h2c HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nContent-Length: 3\r\n\r\n"
            b"abc" + get("/next")
        )
        status, _, answer = await read_answer(reader)
        assert status == 200 and orjson.loads(answer)["length"] == 3
        assert "upgrade" not in orjson.loads(answer)["headers"]
        assert orjson.loads((await read_answer(reader))[2])["path"] == "/next"
        writer.close()


async def test_head_gets_the_head_only() -> None:
    async with serving() as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n" + get("/next"))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert b"content-length: " in head
        assert orjson.loads((await read_answer(reader))[2])["path"] == "/next"
        writer.close()


async def test_large_body_and_large_answers() -> None:
    body = bytes(range(256)) * (BIG // 256)
    async with serving() as server, httpx.AsyncClient(timeout=60) as client:
        url = f"http://127.0.0.1:{server.port}"
        answer = (await client.post(f"{url}/upload", content=body)).json()
        assert answer["length"] == BIG
        assert answer["sha256"] == hashlib.sha256(body).hexdigest()
        # Two 20 MB answers pipelined to a client that reads slowly: the write buffer fills,
        # the server waits for it, both arrive whole and in order.
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(get("/big") + get("/after"))
        await asyncio.sleep(0.3)
        status, _, big = await read_answer(reader)
        assert status == 200 and len(big) == BIG
        assert orjson.loads((await read_answer(reader))[2])["path"] == "/after"
        writer.close()


async def test_closed_connections_are_freed_with_their_bodies() -> None:
    """Every connection, once closed and answered, is freed at once (no cycle left through
    httptools' parser, which the garbage collector cannot see), and a kept-alive one holds no
    body between requests."""
    body = b"x" * (1 << 20)
    async with serving() as server:
        refs = []
        for close_first in (False, True):
            for _ in range(5):
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                writer.write(
                    b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body)
                )
                writer.write(body)
                await asyncio.sleep(0.01)  # the server has taken the connection
                (connection,) = server.connections - {r() for r in refs}
                refs.append(weakref.ref(connection))
                if close_first:  # the client leaves before reading its answer
                    writer.close()
                    await asyncio.sleep(0.05)
                else:
                    assert (await read_answer(reader))[0] == 200
                    assert connection._body == []  # idle: the body went with the request
                    writer.close()
                await writer.wait_closed()
                del connection
        deadline = time.monotonic() + 5
        while any(r() is not None for r in refs) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        gc.collect()
        assert [r() for r in refs if r() is not None] == []
        assert not server.connections


async def test_idle_connections_are_closed_after_the_keep_alive_timeout() -> None:
    async with serving(keep_alive_timeout=0.3) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(get("/once"))
        await read_answer(reader)
        started = time.monotonic()
        assert await closed(reader, 5)
        assert 0.3 <= time.monotonic() - started < 2.5
        silent, _ = await asyncio.open_connection("127.0.0.1", server.port)  # never asks
        assert await closed(silent, 5)
        writer.close()


@pytest.mark.parametrize("client_verify", [False, True], ids=["server-only", "client-certs"])
async def test_tls(tmp_path: Path, client_verify: bool) -> None:
    pki = Pki(tmp_path)
    tls = RestTls(
        certfile=pki.files["server_cert"],
        keyfile=pki.files["server_key"],
        ca_certs=pki.files["ca_cert"] if client_verify else None,
        client_verify=client_verify,
    )
    async with serving(ssl_context=ssl_context(tls)) as server:
        url = f"https://localhost:{server.port}/v1/models/m"
        async with httpx.AsyncClient(verify=client_context(pki, True), timeout=10) as client:
            assert (await client.get(url)).json()["path"] == "/v1/models/m"
        anonymous = httpx.AsyncClient(verify=client_context(pki, False), timeout=10)
        async with anonymous:
            if client_verify:
                with pytest.raises(httpx.HTTPError):
                    await anonymous.get(url)
            else:
                assert (await anonymous.get(url)).status_code == 200
        with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port
            async with httpx.AsyncClient(timeout=10) as plain:
                await plain.get(url.replace("https", "http"))


async def test_two_servers_share_a_port_with_reuse_port() -> None:
    port = free_port()
    async with (
        serving(Echo("a"), port=port, reuse_port=True),
        serving(Echo("b"), port=port, reuse_port=True),
    ):
        seen = set()
        for _ in range(200):  # new connections: the kernel spreads them over both sockets
            async with httpx.AsyncClient(timeout=10) as client:
                seen.add((await client.get(f"http://127.0.0.1:{port}/")).json()["server"])
            if seen == {"a", "b"}:
                break
        assert seen == {"a", "b"}


async def test_stop_answers_the_request_in_flight_and_closes_idle_connections() -> None:
    handler = Echo()
    server = HttpServer(handler, "127.0.0.1", 0)
    await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    idle_reader, _ = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(get("/gate"))
    await asyncio.wait_for(handler.entered.wait(), 5)
    stopping = asyncio.ensure_future(server.stop(grace=10))
    assert await closed(idle_reader, 5)
    with pytest.raises(OSError):  # no longer listening
        await asyncio.open_connection("127.0.0.1", server.port)
    assert not stopping.done()
    handler.gate.set()
    status, headers, _ = await read_answer(reader)
    assert status == 200 and headers["connection"] == "close"
    assert await closed(reader, 5)
    await asyncio.wait_for(stopping, 5)


async def test_stop_cuts_what_outlives_its_grace() -> None:
    handler = Echo()
    server = HttpServer(handler, "127.0.0.1", 0)
    await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(get("/gate"))  # never let through
    await asyncio.wait_for(handler.entered.wait(), 5)
    started = time.monotonic()
    await server.stop(grace=0.3)
    assert time.monotonic() - started < 2
    assert await closed(reader, 5)


async def test_a_tls_handshake_finished_after_stop_is_not_served(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    tls = RestTls(certfile=pki.files["server_cert"], keyfile=pki.files["server_key"])
    server = HttpServer(Echo(), "127.0.0.1", 0, ssl_context=ssl_context(tls))
    await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)  # accepted, no TLS
    await asyncio.sleep(0.1)
    await server.stop(grace=1)
    try:
        await writer.start_tls(client_context(pki, False), server_hostname="localhost")
    except (ssl.SSLError, ConnectionError):
        return  # refused during the handshake: not served either
    writer.write(get("/late"))
    assert await closed(reader, 5)


async def test_answers_finished_in_one_turn_are_written_together() -> None:
    """Eight requests wait on one gate; opened, their handlers all finish in one turn of the loop
    and the eight answers go out in one flush after it (gateway/write_batch.py), each on its own
    connection, whole."""
    from gateway.write_batch import WriteBatch

    class Counting(WriteBatch):
        def __init__(self) -> None:
            super().__init__(asyncio.get_running_loop())
            self.flushed: list[int] = []

        def _flush(self) -> None:
            self.flushed.append(len(self._held))
            super()._flush()

    echo = Echo()
    async with serving(echo) as server:
        batch = server.batch = Counting()
        streams = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(8)]
        for i, (_, writer) in enumerate(streams):
            writer.write(get("/gate", f"X-N: {i}\r\n"))
        while sum(1 for c in server.connections if c._task is not None) < 8:
            await asyncio.sleep(0.01)
        echo.gate.set()
        for i, (reader, writer) in enumerate(streams):
            status, _, answer = await read_answer(reader)
            assert status == 200 and orjson.loads(answer)["headers"]["x-n"] == str(i)
            writer.close()
    assert batch.flushed == [8]
