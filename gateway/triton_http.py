"""Triton's HTTP inference endpoint, KServe v2 with binary tensor data, over pooled HTTP/1.1.

Why this and not gRPC: the gateway is Python, and what it pays per upstream call is what limits
it. grpc.aio's client measured 289-408 us of CPU per ModelInfer on this project's 2-core machine
(its completion-queue thread and per-call objects); one POST on a kept-alive HTTP/1.1 connection
with the tensors as raw bytes measured 80-123 us, the same tensors and model (bench: issue 11).

The wire format is Triton's binary tensor data extension: a JSON header (its length in
``Inference-Header-Content-Length``) followed by each input's raw bytes, little-endian and
row-major, BYTES elements each prefixed by its 4-byte length; the answer has the same layout
with ``binary_data_size`` per output. Triton answers errors as ``{"error": ...}`` with the HTTP
status of its error code (http_server.cc ``HttpCodeFromError``): 400 invalid argument (and
unknown, already exists, cancelled), 404 not found, 500 internal, 501 unsupported, 503
unavailable.

One request at a time per connection (Triton's HTTP server does not pipeline); idle connections
are kept for the next call. A connection that fails before any answer byte after lying idle was
closed by the server meanwhile: the call is made again on a new one. A call given up (its
deadline passed, its caller gone) leaves its connection waiting for the answer, which is dropped
when it comes; the connection then serves again. Closing it instead, as this module did, opened
a connection for each call given up: under a flood of deadlines shorter than Triton's latency,
one handshake and one TIME_WAIT socket each; off loopback (where Linux's ``tcp_tw_reuse``
default does not apply) past about 470 a second to one Triton (28,232 ephemeral ports, 60 s of
TIME_WAIT each) no port is left to connect from. Nothing is lost: Triton runs an HTTP call
whose client left anyway (its request cancellation covers the gRPC endpoint and the C API:
docs/user_guide/request_cancellation.md; Triton 2.51 here ran 3 of 3 calls to a model sleeping
0.5 s whose clients closed 50 ms after sending, by its nv_inference_request_success), as the gRPC
upstream lets it (triton_grpc.py).

Opening a connection (name lookup and handshake) is bounded on its own: a Triton whose container
is gone leaves a name that resolves nowhere (Docker's DNS then asks upstream servers that may
never answer: 5 s measured in a gateway container) or an address that drops the handshake (the
kernel retries for minutes), and a call waiting on either would hang instead of failing
UNAVAILABLE for another instance, or the client, to take.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlsplit

import httptools  # type: ignore[import-untyped]
import numpy as np
import orjson
from tritonclient.utils import (
    deserialize_bytes_tensor,
    np_to_triton_dtype,
    serialize_byte_tensor,
    triton_to_np_dtype,
)

from gateway.loops import BoundLoop
from gateway.memo import remember
from gateway.types import Hold, Tensors
from tfsgate.core.status import Code, ServingError

KEEP_IDLE = 64  # connections kept open per instance beyond those in use
# A connection waiting for a given-up call's answer is closed after this: a backstop, since a
# Triton that stops answering has its connections dropped by the probe (abort_calls).
DRAIN_SECONDS = 60.0
# A connection not open within this is a Triton gone: room for one lost SYN (Linux retransmits
# it after its 1 s initial RTO, as when Triton's accept queue overflows under a burst).
CONNECT_SECONDS = 2.0
_HEADER_LENGTH = b"inference-header-content-length"
# Triton's HTTP status -> our code (the statuses http_server.cc answers; anything else is ours
# to call internal). 404 means the model (version) is not loaded there: UNAVAILABLE to a client,
# as the gRPC path says for NOT_FOUND.
_CODES = {
    400: Code.INVALID_ARGUMENT,
    404: Code.UNAVAILABLE,
    500: Code.INTERNAL,
    501: Code.UNIMPLEMENTED,
    503: Code.UNAVAILABLE,
}
# What an instance answers when it could not run the call: another instance may.
ELSEWHERE_STATUSES = frozenset({404, 503})
Request = list[bytes | memoryview]  # one HTTP request, written in order (sent again as is)


class InstanceUnavailable(ServingError):
    """The instance could not take the call (unreachable, or the model not loaded there):
    nothing ran, so another instance may be asked."""

    def __init__(self, message: str) -> None:
        super().__init__(Code.UNAVAILABLE, message)


class _Answer:
    __slots__ = ("status", "header_length", "body", "keep_alive")

    def __init__(self, status: int, header_length: int, body: bytes, keep_alive: bool) -> None:
        self.status = status
        self.header_length = header_length
        self.body = body
        self.keep_alive = keep_alive


class _Connection(asyncio.Protocol):
    """One kept-alive connection; ``request`` sends a whole request and waits for the answer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        # Made by create_connection's protocol factory, so on the running loop; kept (why:
        # gateway/loops.py).
        self.loop = asyncio.get_running_loop()
        self.closed = False
        self.received = False  # any byte of the current answer
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[_Answer] | None = None
        self._chunks: list[bytes] = []
        self._header_length = -1
        self.keep_alive = False  # the last answer's
        # Where the connection goes once a given-up call's answer is read (or it is lost): (it,
        # the answer's keep-alive).
        self.after: Callable[[_Connection, bool], None] | None = None

    # -- asyncio.Protocol -------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"malformed answer from Triton: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionError(str(exc) if exc else "Triton closed the connection"))
        self._done_draining(False)
        # httptools' parser holds our bound callbacks: broken here, the cycle through it frees
        # the connection at once instead of at the next full collection (rare after
        # tfsgate/runloop.py's gc.freeze and thresholds).
        del self._parser
        self._chunks = []

    # -- httptools callbacks ----------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == _HEADER_LENGTH:
            self._header_length = int(value)

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        waiter, self._waiter = self._waiter, None
        body = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks = []
        length, self._header_length = self._header_length, -1
        # (llhttp forgets it once the message is done: kept for a call given up meanwhile)
        self.keep_alive = keep_alive = self._parser.should_keep_alive()
        if waiter is not None and not waiter.done():
            status = self._parser.get_status_code()
            waiter.set_result(_Answer(status, length, body, keep_alive))
        else:  # the call was given up: its answer dropped
            self._done_draining(keep_alive)

    # ---------------------------------------------------------------------------------------------
    def owed(self) -> bool:
        """Whether the answer to the call sent last is still to come."""
        return self._waiter is not None

    def _done_draining(self, keep_alive: bool) -> None:
        after, self.after = self.after, None
        if after is not None:
            after(self, keep_alive)

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection now: a call waiting on it fails with ConnectionError."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    async def request(self, parts: Request) -> _Answer:
        assert self.transport is not None and self._waiter is None
        self.received = False
        self._waiter = self.loop.create_future()
        self.transport.writelines(parts)
        return await self._waiter


# tritonclient's np_to_triton_dtype compares the dtype with each numpy type in turn (1.9 us per
# tensor here): its answers for the numeric types, looked up.
_TRITON_DATATYPES = {
    np.dtype(t): np_to_triton_dtype(np.dtype(t))
    for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32)
    + (np.uint64, np.float16, np.float32, np.float64)
}


def triton_datatype(dtype: np.dtype) -> str:
    """Triton's name of ``dtype`` (FP32, INT64, BYTES, ...), as tritonclient names it."""
    found = _TRITON_DATATYPES.get(dtype)
    return found if found is not None else np_to_triton_dtype(dtype)  # type: ignore[no-any-return]


def tensor_bytes(array: np.ndarray) -> tuple[str, bytes | memoryview]:
    """Triton's datatype of ``array`` and its raw bytes (row-major; BYTES elements each behind
    a 4-byte length), as both of Triton's inference protocols carry them."""
    datatype = triton_datatype(array.dtype)
    if datatype == "BYTES":
        serialized = serialize_byte_tensor(array)
        return datatype, serialized.item() if serialized.size else b""
    if array.size == 0:
        return datatype, b""  # memoryview cannot cast a view with a zero in its shape
    return datatype, np.ascontiguousarray(array).data.cast("B")


def tensor_from_bytes(raw: bytes, datatype: str, shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of ``tensor_bytes`` (numeric tensors are read in place, not copied)."""
    if datatype == "BYTES":
        array = deserialize_bytes_tensor(raw)
    else:
        array = np.frombuffer(raw, dtype=triton_to_np_dtype(datatype))
    return array.reshape(shape)


# Request heads (request line, headers and JSON header) by all they are made of: a lane sends the
# same model, shapes and outputs again and again (every call of one client; each batch size of
# many), and building the header's dicts, orjson's text and the formatted head cost more than the
# lookup (gateway/memo.py; shapes come from clients).
_Inputs = tuple[tuple[str, tuple[int, ...], str, int], ...]  # name, shape, datatype, bytes
_HEADS: dict[tuple[bytes, str, int, _Inputs, tuple[str, ...]], bytes] = {}
_MEMO_ENTRIES = 512


def encode_infer(
    host: bytes, model: str, version: int, inputs: Tensors, outputs: list[str]
) -> Request:
    """The whole POST as parts: request line, headers and JSON header in one, then every input's
    raw bytes as a view of its array. Joined, a megabyte tensor's request was one more copy of
    it held until Triton answered (uvloop's ``writelines`` keeps the views, copying nothing)."""
    described = []
    payload: list[bytes | memoryview] = [b""]
    for name, array in inputs.items():
        datatype, raw = tensor_bytes(array)
        described.append((name, array.shape, datatype, len(raw)))
        payload.append(raw)
    key = (host, model, version, tuple(described), tuple(outputs))
    head = _HEADS.get(key)
    if head is None:
        head = remember(_HEADS, key, _head(*key), _MEMO_ENTRIES)
    payload[0] = head
    return payload


def _head(
    host: bytes,
    model: str,
    version: int,
    inputs: _Inputs,
    outputs: tuple[str, ...],
) -> bytes:
    header: dict[str, object] = {
        "inputs": [
            {
                "name": name,
                "shape": shape,
                "datatype": datatype,
                "parameters": {"binary_data_size": size},
            }
            for name, shape, datatype, size in inputs
        ]
    }
    if outputs:
        header["outputs"] = [{"name": n, "parameters": {"binary_data": True}} for n in outputs]
    else:
        header["parameters"] = {"binary_data_output": True}
    json_header = orjson.dumps(header)
    length = len(json_header) + sum(size for _, _, _, size in inputs)
    return (
        b"POST /v2/models/%s/versions/%d/infer HTTP/1.1\r\nHost: %s\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"Inference-Header-Content-Length: %d\r\nContent-Length: %d\r\n\r\n"
        % (model.encode(), version, host, len(json_header), length)
    ) + json_header


# Answer headers read: each output's name, datatype, shape and size in the body, by the header's
# text (a lane's answers repeat theirs as its requests do); bounded like _HEADS.
_Layout = tuple[tuple[str, str, tuple[int, ...], int], ...]
_LAYOUTS: dict[bytes, _Layout] = {}


def decode_infer(answer: _Answer) -> Tensors:
    body = answer.body
    length = answer.header_length if answer.header_length >= 0 else len(body)
    text = body[:length]
    layout = _LAYOUTS.get(text)
    if layout is None:
        header = orjson.loads(text)
        if any(
            (o.get("parameters") or {}).get("binary_data_size") is None
            for o in header.get("outputs", ())
        ):
            return _json_outputs(header, body, length)
        layout = tuple(
            (o["name"], o["datatype"], tuple(o["shape"]), o["parameters"]["binary_data_size"])
            for o in header.get("outputs", ())
        )
        remember(_LAYOUTS, text, layout, _MEMO_ENTRIES)
    result: Tensors = {}
    offset = length
    for name, datatype, shape, size in layout:
        result[name] = tensor_from_bytes(body[offset : offset + size], datatype, shape)
        offset += size
    return result


def _json_outputs(header: dict[str, Any], body: bytes, length: int) -> Tensors:
    """An answer with outputs as JSON (only if Triton ignored binary_data), beside binary ones."""
    result: Tensors = {}
    offset = length
    for output in header.get("outputs", ()):
        shape = tuple(output["shape"])
        datatype = output["datatype"]
        size = (output.get("parameters") or {}).get("binary_data_size")
        if size is None:
            dtype = np.object_ if datatype == "BYTES" else triton_to_np_dtype(datatype)
            result[output["name"]] = np.array(output.get("data", []), dtype=dtype).reshape(shape)
            continue
        result[output["name"]] = tensor_from_bytes(body[offset : offset + size], datatype, shape)
        offset += size
    return result


def error_of(answer: _Answer) -> ServingError:
    try:
        message = str(orjson.loads(answer.body).get("error", ""))
    except (orjson.JSONDecodeError, AttributeError):
        message = answer.body[:1000].decode(errors="replace")
    message = message or f"Triton answered HTTP {answer.status}"
    if answer.status in ELSEWHERE_STATUSES:
        return InstanceUnavailable(message)
    return ServingError(_CODES.get(answer.status, Code.INTERNAL), message)


class HttpTriton:
    """The connections to one Triton's HTTP endpoint (``http://host:port``)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"not a Triton HTTP URL (http://host:port): {url!r}")
        self.url = url
        self._host = parts.hostname
        self._port = parts.port or 80
        self._host_header = parts.netloc.encode()
        self._idle: list[_Connection] = []
        self._busy: set[_Connection] = set()  # a call is waiting on each
        # Each waiting for the answer to a call given up: its backstop timer, and what the call
        # holds until that answer comes (gateway/types.py Hold).
        self._draining: dict[_Connection, tuple[asyncio.TimerHandle, Hold | None]] = {}
        self._closed = False
        self._loop = BoundLoop()

    async def _open(self, deadline: float | None) -> _Connection:
        """A new connection within CONNECT_SECONDS, or by the call's deadline when that comes
        first: then the call is out of time (DEADLINE_EXCEEDED), not the instance unavailable."""
        loop = asyncio.get_running_loop()
        bound = loop.time() + CONNECT_SECONDS
        out_of_time = deadline is not None and deadline <= bound
        try:
            async with asyncio.timeout_at(deadline if out_of_time else bound):
                _, connection = await loop.create_connection(_Connection, self._host, self._port)
        except TimeoutError:
            if out_of_time:
                raise ServingError(Code.DEADLINE_EXCEEDED, "Deadline Exceeded") from None
            raise InstanceUnavailable(
                f"Triton at {self.url} unreachable: no connection within {CONNECT_SECONDS:g} s"
            ) from None
        except OSError as exc:
            raise InstanceUnavailable(f"Triton at {self.url} unreachable: {exc}") from exc
        return connection

    def _release(self, connection: _Connection, keep_alive: bool) -> None:
        if (
            keep_alive
            and not connection.closed
            and not self._closed
            and len(self._idle) < KEEP_IDLE
        ):
            self._idle.append(connection)
        else:
            connection.close()

    async def _send(
        self, data: Request, timeout: float | None, hold: Hold | None = None
    ) -> _Answer:
        """Send on an idle connection (a new one if the idle one turns out closed). ``timeout``
        covers connecting and the answer together; ``hold`` is kept while the answer to a call
        given up is owed."""
        deadline = None if timeout is None else self._loop.get().time() + timeout
        while True:
            reused = bool(self._idle)
            connection = self._idle.pop() if reused else await self._open(deadline)
            if connection.closed:
                continue
            self._busy.add(connection)
            try:
                if deadline is None:  # the caller's own deadline (the REST door's) covers it
                    answer = await connection.request(data)
                else:
                    async with asyncio.timeout_at(deadline):
                        answer = await connection.request(data)
            except TimeoutError:
                self._give_up(connection, hold)
                raise ServingError(Code.DEADLINE_EXCEEDED, "Deadline Exceeded") from None
            except ConnectionError as exc:
                connection.close()
                if reused and not connection.received:
                    continue  # closed by Triton while idle: nothing was read, send it again
                raise InstanceUnavailable(f"Triton at {self.url}: {exc}") from exc
            except BaseException:  # the caller cancelled
                self._give_up(connection, hold)
                raise
            finally:
                self._busy.discard(connection)
            self._release(connection, answer.keep_alive)
            return answer

    def _give_up(self, connection: _Connection, hold: Hold | None) -> None:
        """A call given up with its request sent: the connection reads its answer and drops it,
        then serves again (the module's docstring says why), and ``hold`` is kept until then;
        closed instead (``hold`` not kept: the call is lost track of) when it is closing anyway,
        or when as many wait so as may lie idle."""
        if connection.closed or not connection.owed():  # lost, or answered as it was given up
            self._release(connection, connection.keep_alive)
            return
        if self._closed or len(self._draining) >= KEEP_IDLE:
            connection.close()
            return
        connection.after = self._drained
        timer = self._loop.get().call_later(DRAIN_SECONDS, connection.close)
        self._draining[connection] = (timer, hold)
        if hold is not None:
            hold.keep()

    def _drained(self, connection: _Connection, keep_alive: bool) -> None:
        """The answer owed was read and dropped, or the connection is gone (closed by the
        backstop, aborted, lost): Triton is done with the call."""
        timer, hold = self._draining.pop(connection, (None, None))
        if timer is not None:
            timer.cancel()
        self._release(connection, keep_alive)
        if hold is not None:
            hold.release()

    async def infer(
        self,
        model: str,
        version: int,
        inputs: Tensors,
        outputs: list[str],
        timeout: float | None,
        hold: Hold | None = None,
    ) -> Tensors:
        answer = await self._send(
            encode_infer(self._host_header, model, version, inputs, outputs), timeout, hold
        )
        if answer.status != 200:
            raise error_of(answer)
        return decode_infer(answer)

    async def ready(self) -> bool:
        """Triton's ``GET /v2/health/ready`` answered 200 within a second."""
        request = b"GET /v2/health/ready HTTP/1.1\r\nHost: %s\r\n\r\n" % self._host_header
        try:
            answer = await self._send([request], 1.0)
        except ServingError:
            # No answer within the second: calls waiting here would wait out their deadlines
            # (a Triton gone with its host sends no reset). One that answers "not ready" (shutting
            # down) still finishes its calls: those are left alone.
            self.abort_calls()
            return False
        return answer.status == 200

    def abort_calls(self) -> None:
        """Drop every connection, those with a call waiting too: each such call is sent again
        on a new connection, or fails UNAVAILABLE (503) when none opens."""
        idle, self._idle = self._idle, []
        for connection in [*idle, *self._busy, *self._draining]:
            connection.abort()

    async def close(self) -> None:
        """Close the idle connections now, and those waiting only to drop an answer; those in
        use close when their call is answered."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in [*idle, *self._draining]:
            with contextlib.suppress(Exception):
                connection.close()
