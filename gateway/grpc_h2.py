"""The gRPC door's own server: gRPC calls over HTTP/2 (RFC 9113) on one asyncio protocol.

grpc.aio's server costs 250-400 us of CPU per call on this machine doing nothing at all (bench
floors), more than the REST door's whole path; this protocol is the REST door's counterpart
(``gateway/http_server.py``): frames read from one buffer, a call's whole message handed to its
method handler (the same ``grpc.RpcMethodHandler`` objects grpc.aio is given), the answer sent
as one HEADERS, DATA and trailers piece, held with the others of the loop's turn
(``gateway/write_batch.py``). It speaks what gRPC clients send (gRPC over HTTP/2,
PROTOCOL-HTTP2.md in grpc/grpc): length-prefixed messages (gzip/deflate ones inflated),
``grpc-timeout``, metadata (``-bin`` keys base64), ``grpc-status``/``grpc-message`` trailers,
PINGs, flow control both ways, RST_STREAM as cancellation and GOAWAY at shutdown. TLS and
channel arguments it does not know stay with grpc.aio (``GrpcServer`` chooses).

A peer that misbehaves costs it bounded memory and ends its own connection: reading pauses while
the answers already written wait for the peer to read them, a header block is bounded across its
CONTINUATION frames, and the abuse limits of grpc-core's server (too many pings) and nghttp2's
(too many resets, CVE-2023-44487) apply with their defaults.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import socket
import struct
import time
import zlib
from collections.abc import Callable, Iterable
from typing import Any, cast
from urllib.parse import quote

import grpc

from gateway import write_batch
from gateway.hpack_codec import Decoder, Header, HpackError, literal
from gateway.inflate import DEFLATE, GZIP, inflate

log = logging.getLogger(__name__)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_DATA, _HEADERS, _PRIORITY, _RST_STREAM, _SETTINGS = 0, 1, 2, 3, 4
_PUSH_PROMISE, _PING, _GOAWAY, _WINDOW_UPDATE, _CONTINUATION = 5, 6, 7, 8, 9
_END_STREAM = _ACK = 0x1
_END_HEADERS, _PADDED, _PRIORITY_FLAG = 0x4, 0x8, 0x20
_PROTOCOL_ERROR, _FLOW_CONTROL_ERROR, _FRAME_SIZE_ERROR = 0x1, 0x3, 0x6
_COMPRESSION_ERROR, _ENHANCE_YOUR_CALM = 0x9, 0xB
_NO_ERROR = 0x0

_FRAME_HEADER = struct.Struct(">HBBBL")  # 24-bit length as 16 + 8 bits, type, flags, stream
_SETTING = struct.Struct(">HL")
_U32 = struct.Struct(">L")
_MESSAGE_PREFIX = struct.Struct(">BL")  # compressed flag, length
Buffer = bytes | memoryview
# A request message from this many bytes is read through a view of its body; an answer of more
# parts than _JOINED_PARTS (frame headers and payloads: past ~100 KB in 16 KB frames) is written
# as its list of parts, not joined.
_VIEWED_FROM = 64 * 1024
_JOINED_PARTS = 16

MAX_WINDOW = 2**31 - 1
STREAM_WINDOW = 4 << 20  # what a stream may send before the door asks for more
MAX_FRAME = 1 << 20  # the largest frame the door reads (peers must send <= it)
MAX_HEADER_LIST = 64 << 10
# Streams open at once per connection (SETTINGS_MAX_CONCURRENT_STREAMS): gRPC clients queue
# calls past it; it bounds what one connection can make the door hold.
MAX_STREAMS = 4096
# A header block's frames together (HPACK's Huffman code rarely grows a header list; a block far
# past the list limit is a CONTINUATION flood, CVE-2024-27316).
MAX_HEADER_BLOCK = 2 * MAX_HEADER_LIST
# Answers written and not yet read by the peer beyond this pause reading from it (asyncio's
# write-buffer high-water mark): a client that sends PINGs, SETTINGS or calls without reading
# the answers cannot make the door buffer them without bound (CVE-2019-9512, -9515).
WRITE_BUFFER = 1 << 20
# grpc-core's server ping policy (chttp2 ping_abuse_policy.cc, default channel arguments): with
# no answer headers or data written in between, one PING per 5 minutes while calls are open
# (grpc.http2.min_recv_ping_interval_without_data_ms) and per 2 hours with none (as TCP
# keepalive, RFC 1122); past 2 strikes (grpc.http2.max_ping_strikes) GOAWAY ENHANCE_YOUR_CALM
# "too_many_pings", which tells gRPC clients to double their keepalive time.
PING_INTERVAL_BUSY = 300.0
PING_INTERVAL_IDLE = 7200.0
MAX_PING_STRIKES = 2
# Calls the client cancels (RST_STREAM on an open stream) free their stream at once, so without
# a limit one connection could start unbounded work while keeping few streams open ("rapid
# reset", CVE-2023-44487): nghttp2's stream reset rate limit, a bucket of 1000 refilled at 33/s.
RESET_BURST = 1000
RESET_RATE = 33.0
_PEER_DEFAULT_WINDOW = 65535
_PEER_DEFAULT_FRAME = 16384

_OUR_SETTINGS = b"".join(
    _SETTING.pack(key, value)
    for key, value in (
        (2, 0),
        (3, MAX_STREAMS),
        (4, STREAM_WINDOW),
        (5, MAX_FRAME),
        (6, MAX_HEADER_LIST),
    )
)
# ":status: 200" is static entry 8; content-type a literal (stateless, see hpack_codec).
_RESPONSE_HEADERS = b"\x88" + literal(b"content-type", b"application/grpc")
# Request headers that are the transport's, not the call's metadata (grpc.aio hides them too).
_TRANSPORT_HEADERS = frozenset(
    (b"content-type", b"te", b"grpc-timeout", b"grpc-encoding", b"grpc-accept-encoding")
)
_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


def _frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    size = len(payload)
    return _FRAME_HEADER.pack(size >> 8, size & 0xFF, kind, flags, stream) + payload


class _Status(Exception):
    """A call answered with a non-OK status before or instead of its handler."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Context:
    """What a method handler sees of its call: grpc.aio's ``ServicerContext`` methods tfsgate's
    servicers and grpc's health servicer use."""

    __slots__ = ("_call", "_trailing")

    def __init__(self, call: _Call) -> None:
        self._call = call
        self._trailing: tuple[tuple[str, str | bytes], ...] = ()

    def invocation_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        headers = self._call.headers
        connection = self._call.connection
        last = connection.last_metadata  # the header list is shared when a block is resent
        if last is not None and last[0] is headers:
            return last[1]
        pairs: list[tuple[str, str | bytes]] = []
        for name, value in headers:
            if name[:1] == b":" or name in _TRANSPORT_HEADERS:
                continue
            key = name.decode("ascii", "replace")
            if key.endswith("-bin"):
                pairs.append((key, _unbase64(value)))
            else:
                pairs.append((key, value.decode("latin-1")))
        metadata = tuple(pairs)
        connection.last_metadata = (headers, metadata)
        return metadata

    def set_trailing_metadata(self, metadata: Iterable[tuple[str, str | bytes]]) -> None:
        self._trailing = tuple(metadata)

    def time_remaining(self) -> float | None:
        deadline = self._call.deadline
        if deadline is None:
            return None
        return max(0.0, deadline - self._call.connection.loop.time())

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()
    ) -> None:
        if trailing_metadata:
            self._trailing = tuple(trailing_metadata)
        self._call.aborted = (code, details)
        raise grpc.aio.AbortError(details)  # as grpc.aio's: ends the handler, not the connection

    async def write(self, message: Any) -> None:
        """One message of a server-streaming call (grpc's health Watch)."""
        self._call.send_message(_serialize(self._call.method, message))

    def trailers(self, code: grpc.StatusCode = grpc.StatusCode.OK, message: str = "") -> bytes:
        return _trailers(code, message, self._trailing)


def _serialize(method: grpc.RpcMethodHandler, answer: Any) -> bytes:
    serializer = method.response_serializer
    return answer if serializer is None else serializer(answer)  # type: ignore[no-any-return]


_STATUS = {code: literal(b"grpc-status", str(code.value[0]).encode()) for code in grpc.StatusCode}
_OK_CODE = grpc.StatusCode.OK
_OK = _STATUS[_OK_CODE]


def _trailers(
    code: grpc.StatusCode, message: str, metadata: Iterable[tuple[str, str | bytes]] = ()
) -> bytes:
    """A call's trailer block: ``grpc-status``, ``grpc-message`` percent-encoded as gRPC's
    PROTOCOL-HTTP2.md asks (everything outside printable ASCII, and ``%``), trailing metadata."""
    block = _OK if code is _OK_CODE else _STATUS[code]  # (an enum's hash runs Python code)
    if message:
        block += literal(
            b"grpc-message", quote(message, safe=" !\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~").encode()
        )
    for key, value in metadata:
        if isinstance(value, bytes):
            encoded = base64.b64encode(value).rstrip(b"=")
        else:
            encoded = value.encode("latin-1", "replace")
        block += literal(key.lower().encode("ascii", "replace"), encoded)
    return block


def _unbase64(value: bytes) -> bytes:
    try:
        return base64.b64decode(value + b"=" * (-len(value) % 4))
    except ValueError:
        return b""


class _Call:
    """One stream: its request as it arrives, then the handler's task and the answer's flow."""

    __slots__ = (
        "id",
        "connection",
        "headers",
        "chunks",
        "received",
        "unacknowledged",
        "send_window",
        "pending",
        "headers_sent",
        "closed",
        "deadline",
        "expired",
        "aborted",
        "method",
        "task",
        "timer",
    )

    def __init__(
        self, stream_id: int, connection: Http2Connection, headers: tuple[Header, ...]
    ) -> None:
        self.id = stream_id
        self.connection = connection
        self.headers = headers
        self.chunks: list[bytes] = []
        self.received = 0
        self.unacknowledged = 0
        self.send_window = connection.peer_window
        self.pending: list[tuple[bytes, bool]] = []  # (frames' payload, is the trailer block)
        self.headers_sent = False
        self.closed = False
        self.deadline: float | None = None
        self.expired = False
        self.aborted: tuple[grpc.StatusCode, str] | None = None
        self.method: Any = None
        self.task: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None

    def respond(self, message: bytes, trailer_block: bytes) -> None:
        """A unary call's whole answer, in one write when the windows allow (they nearly always
        do: gRPC clients grant megabytes)."""
        if self.closed:
            return
        connection = self.connection
        size = len(message) + 5
        if (
            size <= connection.send_window
            and size <= self.send_window
            and size <= connection.peer_frame
            and len(trailer_block) <= connection.peer_frame
        ):
            # The usual answer: HEADERS, one DATA frame and the trailers, built in one join (what
            # the general path below writes, without its per-frame calls).
            self.headers_sent = self.closed = True
            connection.send_window -= size
            self.send_window -= size
            connection.ping_strikes = 0  # grpc-core: headers or data written reset the strikes
            stream = self.id
            connection.hold(
                b"".join(
                    (
                        _frame(_HEADERS, _END_HEADERS, stream, _RESPONSE_HEADERS),
                        _FRAME_HEADER.pack(size >> 8, size & 0xFF, _DATA, 0, stream),
                        _MESSAGE_PREFIX.pack(0, len(message)),
                        message,
                        _frame(_HEADERS, _END_STREAM | _END_HEADERS, stream, trailer_block),
                    )
                )
            )
            connection.forget(self)
            return
        out: list[Buffer] = [connection.header_frames(self.id, _RESPONSE_HEADERS, False)]
        self.headers_sent = True
        self.closed = True
        rest = connection.data_frames(self, message, out, _MESSAGE_PREFIX.pack(0, len(message)))
        if rest:
            self.pending += [(rest, False), (trailer_block, True)]
            connection.blocked[self.id] = self
            connection.write_all(out)
        else:
            out.append(connection.header_frames(self.id, trailer_block, True))
            connection.write_all(out)
            connection.forget(self)

    def send_message(self, message: bytes) -> None:
        if self.closed:
            return
        out: list[Buffer] = []
        if not self.headers_sent:
            self.headers_sent = True
            out.append(self.connection.header_frames(self.id, _RESPONSE_HEADERS, False))
        body = _MESSAGE_PREFIX.pack(0, len(message)) + message
        self.connection.send_data(self, body, out)

    def finish(self, trailer_block: bytes) -> None:
        """The call's trailers (or a trailers-only answer): the stream's last frame."""
        if self.closed:
            return
        connection = self.connection
        if not self.headers_sent:
            self.headers_sent = True
            trailer_block = _RESPONSE_HEADERS + trailer_block
        if self.pending:
            self.pending.append((trailer_block, True))
        else:
            connection.write(connection.header_frames(self.id, trailer_block, True))
            connection.forget(self)
        self.closed = True


class Http2Connection(write_batch.HoldsAnswers, asyncio.Protocol):
    """One client connection: frames in, calls out to ``server``'s method handlers."""

    def __init__(self, server: Http2GrpcServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        # Made by the loop's protocol factory, so on it; kept (why: gateway/loops.py).
        self.loop = asyncio.get_running_loop()
        self.buffer = bytearray()
        self.preface_seen = False
        self.decoder = Decoder(MAX_HEADER_LIST)
        # The metadata of the last header list read out (hpack_codec shares a resent block's).
        self.last_metadata: tuple[tuple[Header, ...], tuple[tuple[str, str | bytes], ...]] | None
        self.last_metadata = None
        # The :path and grpc-timeout of the last header list dispatched, likewise.
        self.last_target: tuple[tuple[Header, ...], bytes, bytes] | None = None
        self.calls: dict[int, _Call] = {}
        self.blocked: dict[int, _Call] = {}  # calls with frames waiting for window, oldest first
        self.last_stream = 0
        self.peer_window = _PEER_DEFAULT_WINDOW  # SETTINGS_INITIAL_WINDOW_SIZE for new streams
        self.peer_frame = _PEER_DEFAULT_FRAME
        self.send_window = _PEER_DEFAULT_WINDOW  # the connection's
        self.received = 0  # since the door's last connection-level WINDOW_UPDATE
        self.header_stream = 0  # a HEADERS block waiting for CONTINUATION frames
        self.header_flags = 0
        self.header_parts: list[bytes] = []
        self.header_size = 0  # of header_parts: a running total, so tiny frames cost no rescans
        self.going_away = False
        self.out: list[Buffer] = []
        self.batch: write_batch.WriteBatch  # (connection_made: the loop's; HoldsAnswers)
        self.reading_paused = False
        self.last_ping = -math.inf
        self.ping_strikes = 0
        self.resets = float(RESET_BURST)
        self.resets_at = time.monotonic()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = transport = cast(asyncio.Transport, transport)
        self.batch = write_batch.of(asyncio.get_running_loop())
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.connections.add(self)
        transport.set_write_buffer_limits(high=WRITE_BUFFER)
        transport.write(
            _frame(_SETTINGS, 0, 0, _OUR_SETTINGS)
            + _frame(_WINDOW_UPDATE, 0, 0, _U32.pack(MAX_WINDOW - _PEER_DEFAULT_WINDOW))
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.blocked.clear()
        for call in list(self.calls.values()):
            call.closed = True
            if call.task is not None:
                call.task.cancel()
        self.calls.clear()
        self.transport = None

    def pause_writing(self) -> None:
        if self.transport is not None and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.preface_seen:
            if len(buffer) < len(PREFACE):
                if not PREFACE.startswith(bytes(buffer)):
                    self._close()
                return
            if not buffer.startswith(PREFACE):
                self._close()
                return
            del buffer[: len(PREFACE)]
            self.preface_seen = True
        pos = 0
        size = len(buffer)
        out = self.out
        # Payloads are copied out of a view (slicing the bytearray itself copied them twice); the
        # view is released before the buffer is trimmed.
        view = memoryview(buffer)
        try:
            while size - pos >= 9:
                high, low, kind, flags, stream = _FRAME_HEADER.unpack_from(buffer, pos)
                length = (high << 8) | low
                if length > MAX_FRAME:
                    raise _ConnectionError(_FRAME_SIZE_ERROR, "frame larger than announced")
                stop = pos + 9 + length
                if stop > size:
                    break
                payload = bytes(view[pos + 9 : stop])
                pos = stop
                self._frame(kind, flags, stream & 0x7FFFFFFF, payload)
                if self.transport is None:
                    return
        except _ConnectionError as error:
            self._go_away(error.code, error.message)
            return
        finally:
            view.release()
            if pos:
                del buffer[:pos]
        if self.received > MAX_WINDOW // 2:
            out.append(_frame(_WINDOW_UPDATE, 0, 0, _U32.pack(self.received)))
            self.received = 0
        if out:
            self.write_all(out)
            out.clear()

    # frames

    def _frame(self, kind: int, flags: int, stream: int, payload: bytes) -> None:
        if self.header_stream and (kind != _CONTINUATION or stream != self.header_stream):
            raise _ConnectionError(_PROTOCOL_ERROR, "expected CONTINUATION")
        if kind == _DATA:
            self._data(flags, stream, payload)
        elif kind == _HEADERS:
            self._headers(flags, stream, payload)
        elif kind == _CONTINUATION:
            if stream != self.header_stream:
                raise _ConnectionError(_PROTOCOL_ERROR, "unexpected CONTINUATION")
            self.header_parts.append(payload)
            self.header_size += len(payload)
            if self.header_size > MAX_HEADER_BLOCK:
                raise _ConnectionError(_ENHANCE_YOUR_CALM, "header block too large")
            if flags & _END_HEADERS:
                self.header_stream = 0
                self._header_block(self.header_flags, stream, b"".join(self.header_parts))
        elif kind == _SETTINGS:
            if not flags & _ACK:
                self._settings(payload)
        elif kind == _WINDOW_UPDATE:
            self._window_update(stream, payload)
        elif kind == _PING:
            if not flags & _ACK:
                self._ping_received()
                self.out.append(_frame(_PING, _ACK, 0, payload))
        elif kind == _RST_STREAM:
            call = self.calls.pop(stream, None)
            self.blocked.pop(stream, None)
            if call is not None:
                if not call.closed:
                    self._reset_received()
                call.closed = True
                if call.task is not None:
                    call.task.cancel()
        elif kind == _GOAWAY:
            self.going_away = True
            if not self.calls:
                self._close()
        elif kind == _PUSH_PROMISE:
            raise _ConnectionError(_PROTOCOL_ERROR, "clients do not push")
        # PRIORITY and unknown frame types are ignored (RFC 9113 5.5)

    def _ping_received(self) -> None:
        now = time.monotonic()
        interval = PING_INTERVAL_BUSY if self.calls else PING_INTERVAL_IDLE
        allowed, self.last_ping = self.last_ping + interval, now
        if allowed > now:
            self.ping_strikes += 1
            if self.ping_strikes > MAX_PING_STRIKES:
                raise _ConnectionError(_ENHANCE_YOUR_CALM, "too_many_pings")

    def _reset_received(self) -> None:
        now = time.monotonic()
        self.resets = min(RESET_BURST, self.resets + (now - self.resets_at) * RESET_RATE) - 1
        self.resets_at = now
        if self.resets < 0:
            raise _ConnectionError(_ENHANCE_YOUR_CALM, "too many streams reset")

    def _headers(self, flags: int, stream: int, payload: bytes) -> None:
        if flags & _PADDED:
            payload = _unpad(payload)
        if flags & _PRIORITY_FLAG:
            payload = payload[5:]
        if flags & _END_HEADERS:
            self._header_block(flags, stream, payload)
        else:
            self.header_stream = stream
            self.header_flags = flags
            self.header_parts = [payload]
            self.header_size = len(payload)

    def _header_block(self, flags: int, stream: int, block: bytes) -> None:
        try:
            headers = self.decoder.decode(block)
        except HpackError as exc:
            raise _ConnectionError(_COMPRESSION_ERROR, str(exc)) from None
        call = self.calls.get(stream)
        if call is not None:  # trailers from the client end its stream
            if flags & _END_STREAM:
                self._dispatch(call)
            return
        if stream % 2 == 0 or stream <= self.last_stream:
            raise _ConnectionError(_PROTOCOL_ERROR, f"bad new stream id {stream}")
        self.last_stream = stream
        if self.going_away or len(self.calls) >= MAX_STREAMS:
            self.out.append(_frame(_RST_STREAM, 0, stream, _U32.pack(0x7)))  # REFUSED_STREAM
            return
        call = _Call(stream, self, headers)
        self.calls[stream] = call
        if flags & _END_STREAM:
            self._dispatch(call)

    def _data(self, flags: int, stream: int, payload: bytes) -> None:
        size = len(payload)
        self.received += size
        if flags & _PADDED:
            payload = _unpad(payload)
        call = self.calls.get(stream)
        if call is None or call.task is not None:
            if stream > self.last_stream:
                raise _ConnectionError(_PROTOCOL_ERROR, "DATA on an idle stream")
            return  # a stream reset or answered: its window is the connection's only
        call.chunks.append(payload)
        call.received += len(payload)
        if call.received > self.server.max_receive + 5:
            self._refuse(call, f"{call.received} bytes")
            return
        if flags & _END_STREAM:
            self._dispatch(call)
        else:
            call.unacknowledged += size
            if call.unacknowledged > STREAM_WINDOW // 2:
                self.out.append(_frame(_WINDOW_UPDATE, 0, stream, _U32.pack(call.unacknowledged)))
                call.unacknowledged = 0

    def _settings(self, payload: bytes) -> None:
        if len(payload) % 6:
            raise _ConnectionError(_FRAME_SIZE_ERROR, "SETTINGS length")
        for offset in range(0, len(payload), 6):
            key, value = _SETTING.unpack_from(payload, offset)
            if key == 4:  # INITIAL_WINDOW_SIZE: applies to open streams too (6.9.2)
                if value > MAX_WINDOW:
                    raise _ConnectionError(_FLOW_CONTROL_ERROR, "window above 2^31-1")
                delta = value - self.peer_window
                self.peer_window = value
                for call in self.calls.values():
                    call.send_window += delta
            elif key == 5:
                if not _PEER_DEFAULT_FRAME <= value <= 0xFFFFFF:
                    raise _ConnectionError(_PROTOCOL_ERROR, "bad MAX_FRAME_SIZE")
                self.peer_frame = value
        self.out.append(_frame(_SETTINGS, _ACK, 0))
        self._flush_pending()

    def _window_update(self, stream: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise _ConnectionError(_FRAME_SIZE_ERROR, "WINDOW_UPDATE length")
        increment = _U32.unpack(payload)[0] & 0x7FFFFFFF
        if stream == 0:
            self.send_window += increment
            if self.send_window > MAX_WINDOW:
                raise _ConnectionError(_FLOW_CONTROL_ERROR, "connection window above 2^31-1")
        else:
            call = self.calls.get(stream)
            if call is None:
                return
            call.send_window += increment
        self._flush_pending()

    # calls

    def _dispatch(self, call: _Call) -> None:
        server = self.server
        headers = call.headers
        last = self.last_target  # the header list is shared when a block is resent
        if last is not None and last[0] is headers:
            path, timeout = last[1], last[2]
        else:
            path = timeout = b""
            for name, value in headers:
                if name == b":path":
                    path = value
                elif name == b"grpc-timeout":
                    timeout = value
            self.last_target = (headers, path, timeout)
        call.method = server.methods.get(path)
        loop = self.loop
        if timeout:
            seconds = _timeout_seconds(timeout)
            if seconds is not None:
                call.deadline = loop.time() + seconds
        call.task = loop.create_task(server.run(call))
        if call.deadline is not None:
            call.timer = loop.call_at(call.deadline, _expire, call)

    def _refuse(self, call: _Call, size: str) -> None:
        """A message past the receive limit: answered now, and the rest of it refused with
        RST_STREAM(NO_ERROR), which tells the client to stop sending (RFC 9113 8.1)."""
        limit = self.server.max_receive
        call.chunks.clear()
        self.server.fail(
            call,
            _Status(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"Received message larger than max ({size} vs. {limit})",
            ),
        )
        self.out.append(_frame(_RST_STREAM, 0, call.id, _U32.pack(_NO_ERROR)))

    def forget(self, call: _Call) -> None:
        self.calls.pop(call.id, None)
        if self.going_away and not self.calls:
            self._close()

    # writing

    def write_held(self, data: bytes) -> None:
        # What is written at once (control frames, a large or blocked answer, a GOAWAY, the
        # close) flushes what is held first, so the connection's bytes keep their order.
        if self.transport is not None:
            self.transport.write(data)

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            if self.held:
                self.flush()
            self.transport.write(data)

    def write_all(self, parts: list[Buffer]) -> None:
        """Frames in one write: joined when small, else handed over as they are (a large
        answer's DATA payloads are views of its message: no copy of it is made to send it)."""
        if self.transport is None:
            return
        if self.held:
            self.flush()
        if len(parts) > _JOINED_PARTS:
            self.transport.writelines(parts)
        else:
            self.transport.write(b"".join(parts))

    def header_frames(self, stream: int, block: bytes, end_stream: bool) -> bytes:
        self.ping_strikes = 0  # grpc-core: headers or data written reset the ping strikes
        end = _END_STREAM if end_stream else 0
        limit = self.peer_frame
        if len(block) <= limit:
            return _frame(_HEADERS, end | _END_HEADERS, stream, block)
        frames = [_frame(_HEADERS, end, stream, block[:limit])]
        for start in range(limit, len(block), limit):
            last = start + limit >= len(block)
            frames.append(
                _frame(
                    _CONTINUATION, _END_HEADERS if last else 0, stream, block[start : start + limit]
                )
            )
        return b"".join(frames)

    def send_data(self, call: _Call, body: bytes, out: list[Buffer]) -> None:
        """DATA frames within both flow-control windows; the rest waits for WINDOW_UPDATEs."""
        if call.pending:
            call.pending.append((body, False))
        else:
            rest = self.data_frames(call, body, out)
            if rest:
                call.pending.append((rest, False))
                self.blocked[call.id] = call
        if out:
            self.write_all(out)

    def data_frames(self, call: _Call, body: bytes, out: list[Buffer], head: bytes = b"") -> bytes:
        """DATA frames of ``head`` + ``body`` within both windows, appended to ``out`` as frame
        headers and payloads (views of ``body``); what does not fit is returned."""
        self.ping_strikes = 0
        view = memoryview(body)
        while head or view:
            room = min(self.send_window, call.send_window, self.peer_frame, len(head) + len(view))
            if room <= 0:
                return head + bytes(view)
            out.append(_FRAME_HEADER.pack(room >> 8, room & 0xFF, _DATA, 0, call.id))
            self.send_window -= room
            call.send_window -= room
            if head:  # the message's 5-byte prefix, in the first frame
                first, head = head[:room], head[room:]
                out.append(first)
                room -= len(first)
            if room:
                out.append(view[:room])
                view = view[room:]
        return b""

    def _flush_pending(self) -> None:
        """Frames that waited for window, in the order their calls blocked. Trailers are not
        flow-controlled: they follow their data as soon as it is out."""
        out = self.out
        for call in list(self.blocked.values()):
            while call.pending:
                payload, is_trailer = call.pending[0]
                if is_trailer:
                    call.pending.pop(0)
                    out.append(self.header_frames(call.id, payload, True))
                    self.forget(call)
                    break
                rest = self.data_frames(call, payload, out)
                if rest:
                    call.pending[0] = (rest, False)
                    break
                call.pending.pop(0)
            if not call.pending:
                del self.blocked[call.id]

    def _go_away(self, code: int, message: str) -> None:
        """A connection error: GOAWAY, its message as the debug data (gRPC clients read
        "too_many_pings" there), and the connection closed."""
        log.info("gRPC connection closed: %s", message)
        goaway = _U32.pack(self.last_stream) + _U32.pack(code) + message.encode()[:256]
        self.out.append(_frame(_GOAWAY, 0, 0, goaway))
        self._close()

    def goaway(self) -> None:
        """Graceful shutdown: no new streams; the connection closes once its calls end."""
        if self.going_away or self.transport is None:
            return
        self.going_away = True
        self.write(_frame(_GOAWAY, 0, 0, _U32.pack(self.last_stream) + _U32.pack(_NO_ERROR)))
        if not self.calls:
            self._close()

    def _close(self) -> None:
        if self.transport is not None:
            if self.held:
                self.flush()
            if self.out:  # frames queued while reading (a last flush of pending answers)
                self.write_all(self.out)
                self.out.clear()
            self.transport.close()


class _ConnectionError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _unpad(payload: bytes) -> bytes:
    if not payload:
        raise _ConnectionError(_PROTOCOL_ERROR, "padding length missing")
    padding = payload[0]
    if padding >= len(payload):
        raise _ConnectionError(_PROTOCOL_ERROR, "padding longer than the frame")
    return payload[1 : len(payload) - padding]


def _timeout_seconds(value: bytes) -> float | None:
    text = value.decode("ascii", "replace")
    unit = _TIMEOUT_UNITS.get(text[-1:])
    if unit is None or not text[:-1].isdigit() or len(text) > 9:
        return None
    return int(text[:-1]) * unit


def _expire(call: _Call) -> None:
    if call.task is not None and not call.task.done():
        call.expired = True
        call.task.cancel()


def _inflate(encoding: bytes, message: bytes | memoryview, limit: int) -> bytes:
    """At most ``limit`` + 1 bytes of the inflated message (gateway/inflate.py)."""
    wbits = _WBITS.get(encoding)
    if wbits is None:
        raise _Status(
            grpc.StatusCode.UNIMPLEMENTED, f"Unsupported compression: {encoding.decode()}"
        )
    try:
        return inflate(message, wbits, limit)
    except zlib.error:  # grpc-core: INTERNAL "Unexpected error decompressing data"
        raise _Status(grpc.StatusCode.INTERNAL, "Unexpected error decompressing data") from None


_WBITS = {b"gzip": GZIP, b"deflate": DEFLATE}


class Http2GrpcServer:
    """Serves ``methods`` (full method path -> ``grpc.RpcMethodHandler``) on TCP or Unix sockets."""

    def __init__(
        self,
        methods: dict[str, grpc.RpcMethodHandler],
        max_receive: int,
        max_send: int,
        max_concurrent_rpcs: int | None = None,
    ) -> None:
        self.methods = {path.encode(): handler for path, handler in methods.items()}
        self.max_receive = max_receive
        self.max_send = max_send
        self.max_concurrent = max_concurrent_rpcs
        self.active = 0
        self.connections: set[Http2Connection] = set()
        self._servers: list[asyncio.Server] = []

    async def listen_tcp(self, host: str, port: int, reuse_port: bool) -> int:
        server = await asyncio.get_running_loop().create_server(
            lambda: Http2Connection(self),
            host.strip("[]") or None,
            port,
            reuse_port=reuse_port or None,
        )
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def listen_unix(self, path: str) -> None:
        server = await asyncio.get_running_loop().create_unix_server(
            lambda: Http2Connection(self), path
        )
        self._servers.append(server)

    async def run(self, call: _Call) -> None:
        """One call, start to trailers: the handler's answer or the status it ended with."""
        if self.max_concurrent is not None and self.active >= self.max_concurrent:
            self.fail(
                call, _Status(grpc.StatusCode.RESOURCE_EXHAUSTED, "Concurrent RPC limit exceeded!")
            )
            return
        self.active += 1
        context = Context(call)
        try:
            request = self._request(call)
            method = call.method
            if method.unary_unary is not None:
                answer = await method.unary_unary(request, context)
                message = _serialize(method, answer)
                if len(message) > self.max_send:
                    raise _Status(
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"Sent message larger than max ({len(message)} vs. {self.max_send})",
                    )
                call.respond(message, context.trailers())
            else:
                answers = method.unary_stream(request, context)
                if hasattr(answers, "__aiter__"):
                    async for answer in answers:
                        await context.write(answer)
                else:
                    await answers
                call.finish(context.trailers())
        except grpc.aio.AbortError:
            code, details = call.aborted or (grpc.StatusCode.UNKNOWN, "")
            call.finish(context.trailers(code, details))
        except _Status as status:
            call.finish(context.trailers(status.code, status.message))
        except asyncio.CancelledError:
            if call.expired:
                call.finish(
                    context.trailers(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
                )
            else:  # the client's reset, a lost connection (closed) or the door's shutdown
                call.finish(context.trailers(grpc.StatusCode.CANCELLED, "Cancelled"))
        except Exception:  # noqa: BLE001 - as grpc.aio: the handler's bug is the call's UNKNOWN
            log.exception("gRPC handler failed")
            call.finish(
                context.trailers(grpc.StatusCode.UNKNOWN, "Unexpected error in RPC handling")
            )
        finally:
            self.active -= 1
            if call.timer is not None:
                call.timer.cancel()

    def fail(self, call: _Call, status: _Status) -> None:
        call.finish(_trailers(status.code, status.message))

    def _request(self, call: _Call) -> Any:
        method = call.method
        if method is None:
            raise _Status(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
        body = b"".join(call.chunks)
        call.chunks.clear()
        if len(body) < 5:
            raise _Status(grpc.StatusCode.INTERNAL, "Missing request message")
        compressed, length = _MESSAGE_PREFIX.unpack_from(body)
        if len(body) != 5 + length:
            raise _Status(grpc.StatusCode.INTERNAL, "Exactly one request message expected")
        # A large message is parsed from a view of the body (protobuf and zlib read any buffer):
        # a megabyte tensor is not copied once more here.
        message: bytes | memoryview = body[5:] if length < _VIEWED_FROM else memoryview(body)[5:]
        if compressed:
            encoding = next((v for k, v in call.headers if k == b"grpc-encoding"), b"identity")
            message = _inflate(encoding, message, self.max_receive)
            if len(message) > self.max_receive:
                raise _Status(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"Received message larger than max (inflated past {self.max_receive} bytes)",
                )
        deserializer: Callable[[Buffer], Any] | None = method.request_deserializer
        if deserializer is None:
            return bytes(message)
        try:
            return deserializer(message)
        except Exception:  # noqa: BLE001 - a message that does not parse
            raise _Status(grpc.StatusCode.INTERNAL, "Failed to parse the request message") from None

    async def stop(self, grace: float | None) -> None:
        for server in self._servers:
            server.close()
        for connection in list(self.connections):
            connection.goaway()
        loop = asyncio.get_running_loop()
        until = loop.time() + (grace or 0)
        while any(c.calls for c in self.connections) and loop.time() < until:
            await asyncio.sleep(0.02)
        for connection in list(self.connections):
            for call in list(connection.calls.values()):
                if call.task is not None:
                    call.task.cancel()
            connection._close()  # after what it holds
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
