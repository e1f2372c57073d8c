"""The REST door's HTTP/1.1 server: an asyncio protocol on httptools' parser, one handler call per
request.

Why not uvicorn: its ASGI layer (a scope dict, receive/send messages, a cycle object per request)
measured 58 us of server CPU per do-nothing request at 16 clients against 14 us for a bare protocol
on the same parser (``bench/floors.py``), and TF Serving's REST API only ever needs a whole request
and a whole answer. So the handler is one coroutine,
``(method, raw path, headers, body) -> (status, headers, body)``, and this module does the HTTP
that TF Serving's clients rely on, as uvicorn's httptools protocol did:

- keep-alive: HTTP/1.1's default; HTTP/1.0 or ``Connection: close`` closes after the answer; a
  connection idle for ``keep_alive_timeout`` (uvicorn's default, 5 s) is closed;
- pipelined requests answered in order, each in a task (and context) of its own;
- back-pressure: reading pauses while a request waits behind another and while the transport's
  write buffer is over its high-water mark;
- bodies plain or chunked, of any size (uvicorn bounded neither bodies nor headers: TF Serving
  takes large JSON); ``Expect: 100-continue`` answered (curl waits 1 s for it above 1 KB); how
  many large bodies are held at once is bounded (``gateway/large_bodies.py``);
- every answer has Content-Length (never chunked) and Date; HEAD gets the head only;
- a malformed request is answered 400 and the connection closed; Upgrade is ignored (RFC 9110
  7.8: the request is answered over HTTP/1.1); CONNECT is answered by the handler, then closed;
- a handler exception is logged and answered 500 ``{"error": ...}`` (the handler maps its own
  errors: this is for bugs);
- stop: no new connections, idle ones closed, requests already received answered within a bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import http
import json
import logging
import socket
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import cast

import httptools  # type: ignore[import-untyped]

from gateway import write_batch
from gateway.large_bodies import LargeBodies

log = logging.getLogger(__name__)

Headers = list[tuple[bytes, bytes]]  # names lowercased
Answer = tuple[int, Headers, bytes]
Handler = Callable[[str, bytes, Headers, bytes], Awaitable[Answer]]
_Request = tuple[str, bytes, Headers, bytes, bool]  # method, raw path, headers, body, keep-alive

# The client's address, in each request's context (an ASGI app's scope["client"]).
PEER: contextvars.ContextVar[tuple[str, int] | None] = contextvars.ContextVar(
    "tfsgate_http_peer", default=None
)

KEEP_ALIVE_TIMEOUT = 5.0  # uvicorn's --timeout-keep-alive default
BACKLOG = 2048  # uvicorn's --backlog default
_SWEEP_SECONDS = 1.0
_NEVER = float("inf")  # idle_since of a connection with a request in hand
# An answer this small goes out in one write with its head (one send, one segment); a larger one
# is written after it rather than copied into it.
_ONE_WRITE = 64 * 1024
# A connection's place among the large bodies (gateway/large_bodies.py).
_NO_PLACE, _WAITING, _HOLDING = 0, 1, 2


def _status_line(code: int) -> bytes:
    try:
        phrase = http.HTTPStatus(code).phrase.encode()
    except ValueError:
        phrase = b""
    return b"HTTP/1.1 %d %s\r\n" % (code, phrase)


_STATUS_LINES = {code: _status_line(code) for code in range(100, 600)}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_JSON = [(b"content-type", b"application/json")]
_BAD_REQUEST = json.dumps({"error": "Invalid HTTP request received."}).encode()


def _date_header() -> bytes:
    return b"date: %s\r\n" % formatdate(usegmt=True).encode()


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """The listening socket, bound with SO_REUSEPORT: the kernel spreads connections over every
    gateway process bound to the port (--gateway_workers)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class HttpServer:
    def __init__(
        self,
        handler: Handler,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        reuse_port: bool = False,
        keep_alive_timeout: float = KEEP_ALIVE_TIMEOUT,
        large_bodies: LargeBodies | None = None,
        query: bool = False,
    ) -> None:
        """``query``: the handler's path keeps the request's query (TF Serving's REST API has
        none to read; the admin API's has)."""
        self.handler = handler
        self.query = query
        self.large_bodies = large_bodies or LargeBodies()
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.reuse_port = reuse_port
        self.keep_alive_timeout = keep_alive_timeout
        self.connections: set[_Connection] = set()
        self.stopping = False
        self.date = _date_header()
        self.loop: asyncio.AbstractEventLoop
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._emptied: asyncio.Future[None] | None = None
        self.batch: write_batch.WriteBatch  # small answers written at the end of the loop's turn

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.batch = write_batch.of(self.loop)
        self.stopping = False
        if self.reuse_port:
            sock = reuse_port_socket(self.host, self.port)
            self._server = await self.loop.create_server(
                lambda: _Connection(self), sock=sock, ssl=self.ssl_context, backlog=BACKLOG
            )
        else:
            self._server = await self.loop.create_server(
                lambda: _Connection(self),
                self.host,
                self.port,
                ssl=self.ssl_context,
                backlog=BACKLOG,
            )
        self.port = self._server.sockets[0].getsockname()[1]  # the one bound when 0 was asked
        self._sweeper = self.loop.call_later(_SWEEP_SECONDS, self._sweep)

    def _sweep(self) -> None:
        """Once a second: the Date header, keep-alive connections idle too long closed (one
        timer for all of them, where uvicorn armed and cancelled one per answer), and, while
        large bodies wait, uploads that hold a place without sending cut off."""
        self.date = _date_header()
        now = self.loop.time()
        oldest = now - self.keep_alive_timeout
        for connection in [c for c in self.connections if c.idle_since <= oldest]:
            connection.close()
        if self.large_bodies.waiting:
            stalled = now - self.large_bodies.stall
            for connection in [c for c in self.connections if c.stalled_since(stalled)]:
                log.warning(
                    "closing a connection that holds a large body's place but stopped sending"
                )
                connection.close()
        self._sweeper = self.loop.call_later(_SWEEP_SECONDS, self._sweep)

    def forget(self, connection: _Connection) -> None:
        self.connections.discard(connection)
        connection.release()
        if not self.connections and self._emptied is not None and not self._emptied.done():
            self._emptied.set_result(None)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop listening, close idle connections, answer the requests already received for up to
        ``grace`` seconds, then cut what is left."""
        if self._server is None:
            return
        self._server.close()
        self.stopping = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        self._emptied = self.loop.create_future()
        for connection in list(self.connections):
            connection.shutdown()
        if self.connections:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await self._emptied
        tasks = [task for c in list(self.connections) if (task := c.abort()) is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None


class _Connection(write_batch.HoldsAnswers, asyncio.Protocol):
    """One client connection. Requests are answered one at a time in arrival order: the first
    runs in a task, the others wait in ``_queue`` and each gets a task when its turn comes."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.idle_since = _NEVER  # loop time since when nothing is asked or answered
        self._handler = server.handler
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport = None  # type: ignore[assignment]
        self._context = contextvars.copy_context()
        self._queue: deque[_Request | None] = deque()  # None: a malformed request, 400 in turn
        self._task: asyncio.Task[None] | None = None  # the request being answered
        self._in_message = False  # a request is partly read
        self._close_when_done = False  # stop() or the client's EOF: close once all is answered
        self._ignore_input = False  # after a malformed request or a CONNECT
        self._lost = False
        self._reading = True
        self._drained: asyncio.Future[None] | None = None  # while writing is paused
        self._continue_owed = False
        self.batch = server.batch  # small answers held to the turn's end (HoldsAnswers)
        # The request being parsed.
        self._method = ""
        self._version = "1.1"
        self._url = b""
        self._headers: Headers = []
        self._body: list[bytes] = []
        self._received = 0  # bytes of this request's body so far
        self._keep_alive = True
        self._expect_continue = False
        self._upgrade = False
        # Among the large bodies: no place, waiting in line, or holding one until answered.
        self._place = _NO_PLACE
        self._body_at = 0.0  # loop time of the last bytes of a large body

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = transport = cast(asyncio.Transport, transport)
        if self.server.stopping:  # accepted before stop, its TLS handshake done after
            transport.close()
            return
        sock = transport.get_extra_info("socket")
        # asyncio sets TCP_NODELAY only on sockets made with proto IPPROTO_TCP; stated here for
        # every socket (with Nagle and delayed ACKs a small answer waited ~40 ms).
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):  # (host, port[, flow, scope]); a Unix socket's is a str
            self._context.run(PEER.set, (str(peer[0]), int(peer[1])))
        self.server.connections.add(self)
        self.idle_since = self.server.loop.time()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._queue.clear()
        if self._place == _WAITING:
            self.server.large_bodies.withdraw(self)
            self._place = _NO_PLACE
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        if self._task is None:
            self.server.forget(self)

    def release(self) -> None:
        """Closed and answered: drop the parser. httptools' parser holds this protocol's bound
        callbacks without telling the garbage collector, so the cycle through it is never
        collected: every closed connection stayed alive with the last body it read (5 MB per
        connection of bench/'s 1 MB tensors, ~100 MB per 20 requests)."""
        with contextlib.suppress(AttributeError):  # released once
            del self._parser
        self._body = []
        if self._place == _HOLDING:
            self._give_back()

    def eof_received(self) -> bool | None:
        # The client is done sending (a half-close): answer what it sent, then close. asyncio's
        # TLS transport cannot stay half open, so there the connection closes at once.
        self._in_message = False  # a request cut short will not be completed
        if self._task is None or self.server.ssl_context is not None:
            return None
        self._close_when_done = True
        return True

    def pause_writing(self) -> None:
        self._drained = self.server.loop.create_future()

    def resume_writing(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self._ignore_input:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._upgraded(data[exc.args[0] :])
        except httptools.HttpParserError:
            self._malformed()

    # httptools' parser callbacks

    def on_message_begin(self) -> None:
        self.idle_since = _NEVER
        self._in_message = True
        self._url = b""
        self._headers = []
        self._body = []
        self._received = 0
        self._expect_continue = self._upgrade = False
        if self._task is not None:
            self._pause_reading()  # pipelined: read no further until the answers catch up

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        value = value.rstrip(b" \t")  # llhttp keeps trailing whitespace; RFC 9110 5.5 drops it
        if name == b"expect" and value.lower() == b"100-continue":
            self._expect_continue = True
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self._parser
        self._method = parser.get_method().decode("ascii")
        self._version = parser.get_http_version()
        # uvicorn's rule: HTTP/1.0 closes even when it asks for keep-alive.
        self._keep_alive = parser.should_keep_alive() and self._version != "1.0"
        if parser.should_upgrade():
            self._upgrade = True  # see _upgraded
        elif self._expect_continue:
            if self._task is None:
                self._send(_CONTINUE)
            else:
                self._continue_owed = True  # after the answers ahead of it, in order

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self._received += len(body)
        if self._place != _NO_PLACE:
            self._body_at = self.server.loop.time()
        elif self._received > self.server.large_bodies.threshold:
            self._take_place()

    def on_message_complete(self) -> None:
        self._in_message = self._continue_owed = False
        if self._upgrade and self._method != "CONNECT":
            return  # answered once parsed again without Upgrade
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body = []  # an idle kept-alive connection holds no body
        keep_alive = self._keep_alive and not self._upgrade  # CONNECT: closed after its answer
        path = _path(self._url, self.server.query)
        request = (self._method, path, self._headers, body, keep_alive)
        if self._task is None:
            self._task = self.server.loop.create_task(
                self._answer(request), context=self._context.copy()
            )
        else:
            self._queue.append(request)

    # Answers

    async def _answer(self, request: _Request) -> None:
        method, path, headers, body, keep_alive = request
        del request
        try:
            try:
                # The handler's frames alone hold the body, so a large one is let go once
                # decoded rather than kept until its answer is written (peak RSS).
                answering = self._handler(method, path, headers, body)
                del body
                status, answer_headers, answer = await answering
            except Exception as exc:  # noqa: BLE001 - a bug answers 500 in TF's shape, never a hang
                log.exception("HTTP handler failed on %s %r", method, path)
                status, answer_headers = 500, _JSON
                answer = json.dumps({"error": f"Internal error: {exc}"}).encode()
            if self._lost:
                return
            last = not keep_alive or (
                self._close_when_done and not self._queue and not self._in_message
            )
            self._write(
                status, answer_headers, b"" if method == "HEAD" else answer, len(answer), last
            )
            if last:
                self.close()
                return
            if self._drained is not None:  # the client reads slower than we answer: wait for it
                self._pause_reading()
                await self._drained
                if self._lost:
                    return
        finally:
            self._task = None
            if self._lost:
                self.server.forget(self)
        if self._place == _HOLDING and not self._queue and not self._large_in_message():
            self._give_back()
        if self._queue:
            following = self._queue.popleft()
            if following is None:
                self._reject()
            else:  # a task and a context of its own, as if it had come alone
                self._task = self.server.loop.create_task(
                    self._answer(following), context=self._context.copy()
                )
            return
        if self._continue_owed:
            self._continue_owed = False
            self._send(_CONTINUE)
        self._resume_reading()
        if not self._in_message:
            self.idle_since = self.server.loop.time()

    def _write(self, status: int, headers: Headers, body: bytes, length: int, last: bool) -> None:
        parts = [_STATUS_LINES.get(status) or _status_line(status)]
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        parts += (b"content-length: %d\r\n" % length, self.server.date)
        if last:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        if len(body) <= _ONE_WRITE:
            parts.append(body)
            self.hold(b"".join(parts))
        else:  # written now: a large answer's flow control (pause_writing) applies at once
            self._send(b"".join(parts))
            self._transport.write(body)

    def write_held(self, data: bytes) -> None:
        if not self._transport.is_closing():
            self._transport.write(data)

    def _send(self, data: bytes) -> None:
        """Written now, after what is held."""
        self.flush()
        self._transport.write(data)

    # Large bodies (gateway/large_bodies.py)

    def _large_in_message(self) -> bool:
        return self._in_message and self._received > self.server.large_bodies.threshold

    def _take_place(self) -> None:
        self._body_at = self.server.loop.time()
        if self.server.large_bodies.claim(self):
            self._place = _HOLDING
        else:
            self._place = _WAITING
            self._pause_reading()

    def admitted(self) -> None:
        self._place = _HOLDING
        self._body_at = self.server.loop.time()
        if self._task is None:  # else the answer ahead resumes reading when it is written
            self._resume_reading()

    def _give_back(self) -> None:
        self._place = _NO_PLACE
        self.server.large_bodies.give_back()

    def stalled_since(self, time: float) -> bool:
        """Holds a large body's place, mid-body, reading (not paused behind an answer), with
        nothing received since ``time``."""
        return (
            self._place == _HOLDING and self._in_message and self._reading and self._body_at < time
        )

    def _malformed(self) -> None:
        """httptools could not parse the input: 400 once the answers ahead are written, then
        close (uvicorn answered at once, out of turn)."""
        self._ignore_input = True
        self._pause_reading()
        if self._task is None:
            self._reject()
        else:
            self._queue.append(None)

    def _reject(self) -> None:
        self._write(400, _JSON, _BAD_REQUEST, len(_BAD_REQUEST), last=True)
        self.close()

    def _upgraded(self, rest: bytes) -> None:
        """llhttp stops at the head of a request asking for Upgrade (or CONNECT) and leaves what
        follows to the new protocol."""
        if self._method == "CONNECT":  # no tunnels: the handler answers it, then we close
            self._ignore_input = True
            self._pause_reading()
            return
        # RFC 9110 7.8 lets a server ignore Upgrade: the request is parsed again without it (by a
        # new parser, with its body and whatever followed) and answered over HTTP/1.1.
        head = [b"%s %s HTTP/%s\r\n" % (self._method.encode(), self._url, self._version.encode())]
        for name, value in self._headers:
            if name != b"upgrade":
                head += (name, b": ", value, b"\r\n")
        head.append(b"\r\n")
        self._parser = httptools.HttpRequestParser(self)
        self.data_received(b"".join(head) + rest)

    # Flow control and closing

    def _pause_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if not self._reading and not self._ignore_input and self._place != _WAITING:
            self._reading = True
            self._transport.resume_reading()

    def close(self) -> None:
        """Closed after what is held is written."""
        self.flush()
        self._transport.close()

    def shutdown(self) -> None:
        """The server stops: close now if idle, else once what was received is answered."""
        if self._task is None and not self._in_message:
            self.close()
        else:
            self._close_when_done = True

    def abort(self) -> asyncio.Task[None] | None:
        """Stop's grace is over: drop the connection and cancel its handler."""
        task = self._task
        self.held = None
        self._transport.abort()
        if task is not None:
            task.cancel()
        return task


def _path(url: bytes, query: bool = False) -> bytes:
    """The path of a request target, and its query when ``query`` (origin-form, what clients
    send, without parsing; absolute-form through httptools; ``*`` as is)."""
    if url[:1] == b"/":
        end = -1 if query else url.find(b"?")
        return url if end < 0 else url[:end]
    try:
        parsed = httptools.parse_url(url)
    except httptools.HttpParserInvalidURLError:
        return url
    path: bytes = parsed.path or b"/"
    return path + b"?" + parsed.query if query and parsed.query else path
