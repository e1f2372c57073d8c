"""The gRPC door's own HTTP/2 server (``gateway/grpc_h2.py``) under grpcio's real client, and
under a hand-driven HTTP/2 client for what grpcio never sends (tiny windows, CONTINUATION,
padding, bad frames)."""

from __future__ import annotations

import asyncio
import gzip
import socket
import struct
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import hpack
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from gateway.grpc_h2 import PREFACE, Http2GrpcServer
from gateway.grpc_service import guarded_methods

ECHO = "/test.Echo/Echo"
SLOW = "/test.Echo/Slow"
FAIL = "/test.Echo/Fail"
BROKEN = "/test.Echo/Broken"
HUGE = 64 << 20


class Handlers:
    def __init__(self) -> None:
        self.cancelled = asyncio.Event()
        self.metadata: tuple[tuple[str, Any], ...] = ()

    async def echo(self, request: bytes, context: Any) -> bytes:
        self.metadata = context.invocation_metadata()
        context.set_trailing_metadata(
            (("x-echo-len", str(len(request))), ("x-raw-bin", b"\x00\xff"))
        )
        return request

    async def slow(self, request: bytes, context: Any) -> bytes:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return request

    async def fail(self, request: bytes, context: Any) -> bytes:
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "nöt ready: 100% %s")
        return b""

    async def broken(self, request: bytes, context: Any) -> bytes:
        raise RuntimeError("a bug")

    def methods(self) -> dict[str, grpc.RpcMethodHandler]:
        return {
            ECHO: grpc.unary_unary_rpc_method_handler(self.echo),
            SLOW: grpc.unary_unary_rpc_method_handler(self.slow),
            FAIL: grpc.unary_unary_rpc_method_handler(self.fail),
            BROKEN: grpc.unary_unary_rpc_method_handler(self.broken),
        }


@asynccontextmanager
async def serving(
    methods: dict[str, grpc.RpcMethodHandler], max_receive: int = HUGE
) -> AsyncIterator[tuple[Http2GrpcServer, int]]:
    server = Http2GrpcServer(methods, max_receive=max_receive, max_send=HUGE)
    port = await server.listen_tcp("127.0.0.1", 0, False)
    try:
        yield server, port
    finally:
        await server.stop(0)


@asynccontextmanager
async def channel_to(
    methods: dict[str, grpc.RpcMethodHandler], max_receive: int = HUGE, **channel: Any
) -> AsyncIterator[grpc.aio.Channel]:
    """A grpcio channel to a door serving ``methods``."""
    async with (
        serving(methods, max_receive) as (_, port),
        grpc.aio.insecure_channel(f"127.0.0.1:{port}", **channel) as opened,
    ):
        yield opened


_OPTIONS = [("grpc.max_receive_message_length", HUGE), ("grpc.max_send_message_length", HUGE)]


async def test_a_unary_call_with_metadata_both_ways() -> None:
    handlers = Handlers()
    async with channel_to(handlers.methods()) as channel:
        call = channel.unary_unary(ECHO)(
            b"hello",
            metadata=(("x-request-id", "abc"), ("x-key-bin", b"\x01\x02\xff")),
            timeout=10,
        )
        assert await call == b"hello"
        trailing = dict(await call.trailing_metadata())
    seen = dict(handlers.metadata)
    assert seen["x-request-id"] == "abc"
    assert seen["x-key-bin"] == b"\x01\x02\xff"
    assert "grpc-timeout" not in seen and "content-type" not in seen
    assert trailing["x-echo-len"] == "5"
    assert trailing["x-raw-bin"] == b"\x00\xff"


async def test_large_messages_both_ways_and_many_calls_on_one_connection() -> None:
    """8 MB each way crosses both flow-control windows many times; 200 calls in flight at once
    share one HTTP/2 connection and each gets its own answer."""
    big = bytes(range(256)) * (8 << 12)
    async with channel_to(Handlers().methods(), options=_OPTIONS) as channel:
        echo = channel.unary_unary(ECHO)
        assert await echo(big, timeout=30) == big
        bodies = [f"call {i}".encode() * (i % 50 + 1) for i in range(200)]
        answers = await asyncio.gather(*(echo(b, timeout=30) for b in bodies))
    assert answers == bodies


async def test_compressed_requests_are_inflated() -> None:
    async with channel_to(Handlers().methods(), compression=grpc.Compression.Gzip) as channel:
        assert await channel.unary_unary(ECHO)(b"z" * 10000, timeout=10) == b"z" * 10000


async def test_statuses_unknown_methods_aborts_bugs_and_limits() -> None:
    async with channel_to(Handlers().methods(), max_receive=1000) as channel:
        cases = [
            ("/test.Echo/Nope", b"", grpc.StatusCode.UNIMPLEMENTED, "Method not found!"),
            (FAIL, b"", grpc.StatusCode.FAILED_PRECONDITION, "nöt ready: 100% %s"),
            (BROKEN, b"", grpc.StatusCode.UNKNOWN, "Unexpected error in RPC handling"),
            (ECHO, b"x" * 2000, grpc.StatusCode.RESOURCE_EXHAUSTED, "larger than max"),
        ]
        for path, body, code, message in cases:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await channel.unary_unary(path)(body, timeout=10)
            assert caught.value.code() == code, path
            assert message in caught.value.details(), path
        assert await channel.unary_unary(ECHO)(b"still fine", timeout=10) == b"still fine"


async def test_deadline_and_cancellation_reach_the_handler() -> None:
    handlers = Handlers()
    async with channel_to(handlers.methods()) as channel:
        slow = channel.unary_unary(SLOW)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await slow(b"", timeout=0.3)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        await asyncio.wait_for(handlers.cancelled.wait(), 5)

        handlers.cancelled.clear()
        call = slow(b"", timeout=30)
        await asyncio.sleep(0.2)
        call.cancel()
        await asyncio.wait_for(handlers.cancelled.wait(), 5)
        assert await channel.unary_unary(ECHO)(b"after", timeout=10) == b"after"


async def test_health_check_and_watch_over_the_door() -> None:
    servicer = health.aio.HealthServicer()
    methods = guarded_methods(health_pb2.DESCRIPTOR.services_by_name["Health"], servicer)
    await servicer.set("svc", health_pb2.HealthCheckResponse.SERVING)
    async with channel_to(methods) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        check = await stub.Check(health_pb2.HealthCheckRequest(service="svc"), timeout=5)
        assert check.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Check(health_pb2.HealthCheckRequest(service="other"), timeout=5)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND

        watch = stub.Watch(health_pb2.HealthCheckRequest(service="svc"), timeout=10)
        first = await watch.read()
        await servicer.set("svc", health_pb2.HealthCheckResponse.NOT_SERVING)
        second = await watch.read()
        watch.cancel()
    assert first.status == health_pb2.HealthCheckResponse.SERVING
    assert second.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_unix_socket_and_graceful_stop(tmp_path: Path) -> None:
    """A call in flight at stop() is answered within the grace; new calls are refused after."""
    gate = asyncio.Event()

    async def wait(request: bytes, context: Any) -> bytes:
        await gate.wait()
        return request

    server = Http2GrpcServer(
        {ECHO: grpc.unary_unary_rpc_method_handler(wait)}, max_receive=HUGE, max_send=HUGE
    )
    path = tmp_path / "grpc.sock"
    await server.listen_unix(str(path))
    async with grpc.aio.insecure_channel(f"unix:{path}") as channel:
        echo = channel.unary_unary(ECHO)
        in_flight = asyncio.ensure_future(echo(b"last", timeout=10))
        await asyncio.sleep(0.2)
        stopping = asyncio.ensure_future(server.stop(5))
        await asyncio.sleep(0.2)
        gate.set()
        assert await in_flight == b"last"
        await stopping
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await echo(b"late", timeout=2)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


# A hand-driven HTTP/2 client for what grpcio does not send.


def _frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    size = len(payload)
    return struct.pack(">HBBBL", size >> 8, size & 0xFF, kind, flags, stream) + payload


class RawClient:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request_headers(self, path: str) -> bytes:
        return self.encoder.encode(
            [
                (":method", "POST"),
                (":scheme", "http"),
                (":path", path),
                (":authority", "x"),
                ("content-type", "application/grpc"),
                ("te", "trailers"),
            ]
        )

    def read_frame(self) -> tuple[int, int, int, bytes]:
        while True:
            if len(self.buffer) >= 9:
                high, low, kind, flags, stream = struct.unpack(">HBBBL", self.buffer[:9])
                size = (high << 8) | low
                if len(self.buffer) >= 9 + size:
                    payload = self.buffer[9 : 9 + size]
                    self.buffer = self.buffer[9 + size :]
                    return kind, flags, stream, payload
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError
            self.buffer += chunk

    def answer(self, stream: int, grant: int = 0) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        """DATA and trailers of ``stream``, granting ``grant`` bytes of window per DATA frame."""
        body = b""
        while True:
            kind, flags, got, payload = self.read_frame()
            if got != stream:
                continue
            if kind == 0:
                body += payload
                if grant and payload:
                    increment = struct.pack(">L", grant)
                    self.send(_frame(8, 0, 0, increment) + _frame(8, 0, stream, increment))
            elif kind == 1:
                headers = self.decoder.decode(payload, raw=True)
                if flags & 1:
                    return body, headers


def _message(body: bytes) -> bytes:
    return struct.pack(">BL", 0, len(body)) + body


async def _in_thread(function: Any, *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, function, *args)


async def test_tiny_windows_continuation_and_padding() -> None:
    """The client allows 100 bytes per stream, sends its headers in three CONTINUATION pieces and
    its message padded: the 3000-byte answer comes in window-sized DATA frames as the client
    grants more, then the trailers."""
    body = bytes(range(250)) * 12

    def exchange(port: int) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        client = RawClient(port)
        client.send(PREFACE + _frame(4, 0, 0, struct.pack(">HL", 4, 100)))
        block = client.request_headers(ECHO)
        third = len(block) // 3
        client.send(
            _frame(1, 0, 1, block[:third])
            + _frame(9, 0, 1, block[third : 2 * third])
            + _frame(9, 4, 1, block[2 * third :])
        )
        padded = bytes([7]) + _message(body) + b"\x00" * 7
        client.send(_frame(0, 0x1 | 0x8, 1, padded))
        return client.answer(1, grant=100)

    async with serving(Handlers().methods()) as (_, port):
        answer, trailers = await _in_thread(exchange, port)
    assert answer == _message(body)
    assert (b"grpc-status", b"0") in trailers


async def test_a_window_smaller_than_the_message_prefix_splits_it() -> None:
    """A 3-byte stream window: the answer's 5-byte message prefix goes out across two DATA
    frames, then the message 3 bytes at a time as the client grants them."""
    body = b"seventeen bytes!!"

    def exchange(port: int) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        client = RawClient(port)
        client.send(PREFACE + _frame(4, 0, 0, struct.pack(">HL", 4, 3)))
        client.send(_frame(1, 0x4, 1, client.request_headers(ECHO)))
        client.send(_frame(0, 0x1, 1, _message(body)))
        return client.answer(1, grant=3)

    async with serving(Handlers().methods()) as (_, port):
        answer, trailers = await _in_thread(exchange, port)
    assert answer == _message(body)
    assert (b"grpc-status", b"0") in trailers


async def test_two_answers_waiting_for_window_both_complete() -> None:
    """Two streams whose answers outgrow a 100-byte stream window: each resumes as the client
    grants it more, in any order, and ends with its own trailers."""
    bodies = {1: bytes(range(200)) * 5, 3: bytes(range(100, 250)) * 9}

    def exchange(port: int) -> dict[int, bytes]:
        client = RawClient(port)
        client.send(PREFACE + _frame(4, 0, 0, struct.pack(">HL", 4, 100)))
        for stream, body in bodies.items():
            client.send(
                _frame(1, 0x4, stream, client.request_headers(ECHO))
                + _frame(0, 0x1, stream, _message(body))
            )
        got = {stream: b"" for stream in bodies}
        ended: set[int] = set()
        while ended != set(bodies):
            kind, flags, stream, payload = client.read_frame()
            if kind == 0 and payload:
                got[stream] += payload
                grant = struct.pack(">L", len(payload))
                client.send(_frame(8, 0, 0, grant) + _frame(8, 0, stream, grant))
            elif kind == 1 and flags & 1:
                assert (b"grpc-status", b"0") in client.decoder.decode(payload, raw=True)
                ended.add(stream)
            elif kind == 1:
                client.decoder.decode(payload, raw=True)
        return got

    async with serving(Handlers().methods()) as (_, port):
        got = await _in_thread(exchange, port)
    assert got == {stream: _message(body) for stream, body in bodies.items()}


async def test_a_broken_connection_leaves_the_others_serving() -> None:
    """A connection with an undecodable header block is closed with GOAWAY
    (COMPRESSION_ERROR); a bad preface is closed; PINGs are answered; other clients go on."""

    def bad_hpack(port: int) -> tuple[int, bytes]:
        client = RawClient(port)
        client.send(PREFACE + _frame(4, 0, 0) + _frame(6, 0, 0, b"12345678"))
        client.send(_frame(1, 0x5, 1, b"\xbe"))  # dynamic index 62, empty table
        kinds = []
        while True:
            kind, _, _, payload = client.read_frame()
            kinds.append(kind)
            if kind == 6:
                assert payload == b"12345678"
            if kind == 7:
                return struct.unpack(">L", payload[4:8])[0], bytes(kinds)

    def bad_preface(port: int) -> bytes:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        data = b""
        while chunk := sock.recv(1 << 16):
            data += chunk
        return data

    async with serving(Handlers().methods()) as (_, port):
        code, kinds = await _in_thread(bad_hpack, port)
        assert code == 0x9
        assert 6 in kinds
        closed = await _in_thread(bad_preface, port)
        assert b"HTTP/1.1 200" not in closed
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            assert await channel.unary_unary(ECHO)(b"ok", timeout=10) == b"ok"


async def test_streams_past_the_announced_limit_are_refused() -> None:
    """A client opening more streams than SETTINGS_MAX_CONCURRENT_STREAMS at once (grpcio
    queues its calls instead) gets REFUSED_STREAM for the extra one; the open ones still
    answer."""
    from gateway.grpc_h2 import MAX_STREAMS

    def flood(port: int) -> tuple[int, int, bytes]:
        client = RawClient(port)
        client.send(PREFACE + _frame(4, 0, 0))
        frames = b"".join(
            _frame(1, 0x4, 2 * i + 1, client.request_headers(ECHO)) for i in range(MAX_STREAMS + 1)
        )
        client.send(frames)
        while True:
            kind, _, stream, payload = client.read_frame()
            if kind == 3:
                break
        client.send(_frame(0, 0x1, 1, _message(b"first")))
        answer, _ = client.answer(1)
        return stream, struct.unpack(">L", payload)[0], answer

    async with serving(Handlers().methods()) as (_, port):
        stream, code, answer = await _in_thread(flood, port)
    assert (stream, code) == (2 * MAX_STREAMS + 1, 0x7)
    assert answer == _message(b"first")


def test_gzip_is_what_grpc_sends() -> None:
    """The compressed-flag path inflates gzip members (grpc's "gzip" encoding)."""
    from gateway.grpc_h2 import _inflate

    assert _inflate(b"gzip", gzip.compress(b"abc"), 100) == b"abc"


def _goaway(client: RawClient) -> tuple[int, bytes, int]:
    """Reads until GOAWAY: its error code, its debug data and how many PING ACKs came first."""
    acks = 0
    while True:
        kind, flags, _, payload = client.read_frame()
        if kind == 6 and flags & 1:
            acks += 1
        elif kind == 7:
            return struct.unpack(">L", payload[4:8])[0], payload[8:], acks


async def test_pings_without_answers_between_end_the_connection_as_grpc_core_does() -> None:
    """grpc-core's server policy: a PING sooner than allowed is a strike, the third strike ends
    the connection with GOAWAY ENHANCE_YOUR_CALM "too_many_pings"; PINGs between answers (gRPC
    clients' flow-control probes) are never strikes."""

    def pinging(port: int, calls: bool) -> tuple[int, bytes, int] | None:
        client = RawClient(port)
        client.send(PREFACE + _frame(4, 0, 0))
        for stream in range(1, 20 if calls else 8, 2):  # 10 PINGs with calls, 4 without
            client.send(_frame(6, 0, 0, b"pingpong"))
            if calls:
                client.send(
                    _frame(1, 0x4, stream, client.request_headers(ECHO))
                    + _frame(0, 0x1, stream, _message(b"x"))
                )
                assert client.answer(stream)[0] == _message(b"x")
        if calls:
            return None
        return _goaway(client)

    async with serving(Handlers().methods()) as (_, port):
        assert await _in_thread(pinging, port, True) is None
        assert await _in_thread(pinging, port, False) == (0xB, b"too_many_pings", 3)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            assert await channel.unary_unary(ECHO)(b"ok", timeout=10) == b"ok"


async def test_a_rapid_reset_flood_ends_the_connection() -> None:
    """Calls started and reset at once (CVE-2023-44487): past nghttp2's budget (1000, then 33 a
    second) the connection ends with GOAWAY ENHANCE_YOUR_CALM; a client cancelling a few calls
    is served on."""
    from gateway.grpc_h2 import RESET_BURST

    def resetting(port: int, count: int) -> tuple[int, bytes, int] | bytes:
        client = RawClient(port)
        client.send(PREFACE + _frame(4, 0, 0))
        frames = [
            _frame(1, 0x4, 2 * i + 1, client.request_headers(SLOW))
            + _frame(3, 0, 2 * i + 1, struct.pack(">L", 0x8))  # CANCEL
            for i in range(count)
        ]
        client.send(b"".join(frames))
        if count > RESET_BURST:
            return _goaway(client)
        stream = 2 * count + 1
        client.send(
            _frame(1, 0x4, stream, client.request_headers(ECHO))
            + _frame(0, 0x1, stream, _message(b"still"))
        )
        return client.answer(stream)[0]

    async with serving(Handlers().methods()) as (_, port):
        assert await _in_thread(resetting, port, 50) == _message(b"still")
        code, debug, _ = await _in_thread(resetting, port, RESET_BURST + 200)
        assert (code, debug) == (0xB, b"too many streams reset")


@pytest.mark.parametrize("piece", [16384, 1])
async def test_a_continuation_flood_ends_the_connection(piece: int) -> None:
    """A header block that never ends (CONTINUATION frames past twice the announced header list
    limit) is a connection error, not a growing buffer (CVE-2024-27316); one-byte frames cost
    no rescan of what came before (the 1-byte case takes 140,000 frames to get there)."""

    def flooding(port: int) -> tuple[int, bytes, int]:
        client = RawClient(port)
        client.send(PREFACE + _frame(4, 0, 0) + _frame(1, 0, 1, client.request_headers(ECHO)))
        frame = _frame(9, 0, 1, b"\x00" * piece)
        try:
            for _ in range(140):  # 2.2 MB in 16 KiB pieces, 140 KB in 1-byte ones
                client.send(frame * (1 if piece > 1 else 1000))
        except OSError:
            pass  # closed by the server while sending
        return _goaway(client)

    async with serving(Handlers().methods()) as (_, port):
        code, debug, _ = await _in_thread(flooding, port)
        assert (code, debug) == (0xB, b"header block too large")


async def test_a_peer_that_does_not_read_stops_being_read() -> None:
    """SETTINGS frames sent by the megabyte by a client that never reads the door's ACKs: the
    door stops reading from it once its unread answers pass the write buffer's high-water mark,
    so what it holds for that client stays bounded (CVE-2019-9515); other clients are served."""
    from gateway.grpc_h2 import WRITE_BUFFER

    flood = _frame(4, 0, 0) * ((20 << 20) // 9)

    def sending(port: int) -> bool:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(3)
        sock.connect(("127.0.0.1", port))
        try:
            sock.sendall(PREFACE + flood)
        except TimeoutError:
            return False  # the door stopped reading
        finally:
            sock.close()
        return True

    async with serving(Handlers().methods()) as (server, port):
        sender = asyncio.ensure_future(_in_thread(sending, port))
        held = 0
        while not sender.done():
            for connection in server.connections:
                if connection.transport is not None:
                    held = max(held, connection.transport.get_write_buffer_size())
            await asyncio.sleep(0.005)
        assert await sender is False
        assert 0 < held <= WRITE_BUFFER + (256 << 10)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            assert await channel.unary_unary(ECHO)(b"ok", timeout=10) == b"ok"


async def test_a_compressed_message_is_inflated_no_further_than_the_limit() -> None:
    """A gzip message that inflates past the receive limit is RESOURCE_EXHAUSTED without ever
    being inflated whole; one that is not gzip at all or is cut short is INTERNAL, as grpc-core
    answers."""
    bomb = gzip.compress(b"\x00" * (64 << 20))  # 64 MiB from ~64 KiB

    def sending(port: int, message: bytes) -> list[tuple[bytes, bytes]]:
        client = RawClient(port)
        headers = client.encoder.encode(
            [
                (":method", "POST"),
                (":scheme", "http"),
                (":path", ECHO),
                (":authority", "x"),
                ("content-type", "application/grpc"),
                ("grpc-encoding", "gzip"),
            ]
        )
        prefixed = struct.pack(">BL", 1, len(message)) + message
        client.send(PREFACE + _frame(4, 0, 0) + _frame(1, 0x4, 1, headers))
        client.send(_frame(0, 0x1, 1, prefixed))
        return client.answer(1)[1]

    async with serving(Handlers().methods(), max_receive=1 << 20) as (_, port):
        trailers = dict(await _in_thread(sending, port, bomb))
        assert trailers[b"grpc-status"] == b"8"
        assert b"inflated past 1048576 bytes" in trailers[b"grpc-message"]
        for broken in (b"not gzip", gzip.compress(b"\x08\x01" * 1000)[:-20]):  # corrupt, cut
            trailers = dict(await _in_thread(sending, port, broken))
            assert trailers[b"grpc-status"] == b"13"


class _Recorded:
    """A transport that records each write before passing it on."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.transport.write(data)

    def writelines(self, parts: list[bytes]) -> None:
        self.write(b"".join(parts))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


async def test_answers_ready_in_one_turn_leave_in_one_write() -> None:
    """Three calls read at once are answered in one turn: their answers are held and written
    together at its end (gateway/write_batch.py); a frame written at once follows what is held."""

    def exchange(port: int, ready: Any, go_on: Any) -> tuple[RawClient, list[bytes]]:
        client = RawClient(port)
        client.send(PREFACE + _frame(4, 0, 0))
        ready()
        go_on.wait(5)
        frames = b""
        for stream in (1, 3, 5):
            frames += _frame(1, 4, stream, client.request_headers(ECHO))
            frames += _frame(0, 1, stream, _message(b"call %d" % stream))
        client.send(frames)
        return client, [client.answer(stream)[0] for stream in (1, 3, 5)]

    async with serving(Handlers().methods()) as (server, port):
        loop = asyncio.get_running_loop()
        connected = asyncio.Event()
        go_on = threading.Event()
        talking = asyncio.ensure_future(
            _in_thread(exchange, port, lambda: loop.call_soon_threadsafe(connected.set), go_on)
        )
        await connected.wait()
        while not server.connections:
            await asyncio.sleep(0.01)
        (connection,) = server.connections
        recorded = connection.transport = _Recorded(connection.transport)
        go_on.set()
        client, answers = await talking
        assert answers == [_message(b"call %d" % s) for s in (1, 3, 5)]
        answered = [w for w in recorded.writes if b"call " in w]
        assert len(answered) == 1 and all(b"call %d" % s in answered[0] for s in (1, 3, 5))
        # What the connection writes at once goes after what it holds.
        connection.hold(b"held")
        connection.goaway()
        assert recorded.writes[-2] == b"held" and recorded.writes[-1][3] == 7  # GOAWAY
        client.sock.close()
