"""The HTTP connection pool against a scripted HTTP/1.1 server on loopback (a pure unit test of
the protocol handling; the real Triton is in test_upstream_endpoints.py)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable

import numpy as np
import orjson
import pytest

from gateway import triton_http
from gateway.triton_http import HttpTriton, InstanceUnavailable, decode_infer, encode_infer
from tests.support.blackhole import NeverAccepting
from tfsgate.core.status import Code, ServingError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def answer_bytes(y: np.ndarray) -> bytes:
    header = orjson.dumps(
        {
            "model_name": "m",
            "outputs": [
                {
                    "name": "y",
                    "datatype": "FP32",
                    "shape": list(y.shape),
                    "parameters": {"binary_data_size": y.nbytes},
                }
            ],
        }
    )
    body = header + y.astype(np.float32).tobytes()
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
        b"Inference-Header-Content-Length: %d\r\nContent-Length: %d\r\n\r\n%s"
        % (len(header), len(body), body)
    )


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


async def with_server(handler: Handler, body: Callable[[str], Awaitable[None]]) -> None:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        await body(f"http://127.0.0.1:{port}")
    finally:
        server.close()


def test_request_layout_and_answer_decoding() -> None:
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    s = np.array([[b"ab"], [b""], [b"c"]], dtype=object)
    parts = encode_infer(b"h:1", "m", 3, {"x": x, "s": s}, ["y"])
    # The tensors' bytes are views of the arrays, not copies (a 1 MB tensor's request was one
    # more megabyte held through the call).
    assert isinstance(parts[1], memoryview) and parts[1].obj is not None
    data = b"".join(parts)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /v2/models/m/versions/3/infer HTTP/1.1\r\n")
    assert b"\r\nContent-Length: %d" % len(body) in head
    length = int(head.split(b"Inference-Header-Content-Length: ")[1].split(b"\r\n")[0])
    header = orjson.loads(body[:length])
    assert header["inputs"][0] == {
        "name": "x",
        "shape": [3, 2],
        "datatype": "FP32",
        "parameters": {"binary_data_size": 24},
    }
    assert header["inputs"][1]["datatype"] == "BYTES"
    assert header["outputs"] == [{"name": "y", "parameters": {"binary_data": True}}]
    raw = body[length:]
    assert raw[:24] == x.tobytes()
    assert raw[24:] == b"\x02\x00\x00\x00ab" + b"\x00\x00\x00\x00" + b"\x01\x00\x00\x00c"
    # An empty tensor (rows of zero) is sent as zero bytes.
    empty = b"".join(encode_infer(b"h:1", "m", 3, {"x": np.zeros((0, 2), np.float32)}, []))
    assert empty.endswith(b'"parameters":{"binary_data_output":true}}')
    assert b'"shape":[0,2]' in empty and b'"binary_data_size":0' in empty
    # All outputs wanted: one flag for every output instead of a list.
    everything = b"".join(encode_infer(b"h:1", "m", 3, {"x": x}, []))
    assert b'"binary_data_output":true' in everything


def test_remembered_heads_and_layouts_follow_what_they_are_made_of() -> None:
    """A request's head is looked up by model, version, each input's name, shape, type and size,
    and the outputs: the same call again reuses it, any difference makes its own; an answer's
    layout is looked up by its header's text."""
    triton_http._HEADS.clear()
    x = np.ones((2, 1), np.float32)
    first = encode_infer(b"h:1", "m", 3, {"x": x}, ["y"])
    again = encode_infer(b"h:1", "m", 3, {"x": x * 2}, ["y"])
    assert again[0] is first[0] and bytes(again[1]) == (x * 2).tobytes()
    others = [
        encode_infer(b"h:1", "m", 3, {"x": np.ones((3, 1), np.float32)}, ["y"]),
        encode_infer(b"h:1", "m", 4, {"x": x}, ["y"]),
        encode_infer(b"h:1", "n", 3, {"x": x}, ["y"]),
        encode_infer(b"h:1", "m", 3, {"z": x}, ["y"]),
        encode_infer(b"h:1", "m", 3, {"x": x.astype(np.float64)}, ["y"]),
        encode_infer(b"h:1", "m", 3, {"x": x}, []),
        encode_infer(b"h:2", "m", 3, {"x": x}, ["y"]),
    ]
    assert len({first[0], *(o[0] for o in others)}) == 1 + len(others)
    # BYTES tensors of one shape differ in size: each head states its own lengths.
    short = b"".join(encode_infer(b"h:1", "m", 3, {"s": np.array([[b"a"]], object)}, []))
    long = b"".join(encode_infer(b"h:1", "m", 3, {"s": np.array([[b"abc"]], object)}, []))
    for request in (short, long):
        head, _, body = request.partition(b"\r\n\r\n")
        assert b"\r\nContent-Length: %d\r\n" % len(body) in head + b"\r\n"
    triton_http._HEADS.clear()  # bounded: emptied when full
    for rows in range(triton_http._MEMO_ENTRIES + 1):
        encode_infer(b"h:1", "m", 3, {"x": np.ones((rows, 1), np.float32)}, [])
    assert len(triton_http._HEADS) == 1

    class Answer:
        def __init__(self, y: np.ndarray) -> None:
            head, _, self.body = answer_bytes(y).partition(b"\r\n\r\n")
            length = head.split(b"Inference-Header-Content-Length: ")[1].split(b"\r\n")[0]
            self.status, self.keep_alive, self.header_length = 200, True, int(length)

    triton_http._LAYOUTS.clear()
    for y in (np.array([[1.5]], np.float32), np.array([[2.5]], np.float32)):
        assert decode_infer(Answer(y))["y"].tolist() == y.tolist()  # type: ignore[arg-type]
    assert len(triton_http._LAYOUTS) == 1  # the second answer's header was read before
    assert decode_infer(Answer(np.ones((2, 1))))["y"].shape == (2, 1)  # type: ignore[arg-type]
    assert len(triton_http._LAYOUTS) == 2


def test_idle_connection_closed_by_the_server_is_replaced() -> None:
    y = np.array([[1.5]], dtype=np.float32)
    connections = 0

    async def one_answer_then_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.write(answer_bytes(y))
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()  # as a server's keep-alive timeout does, between requests

    async def body(url: str) -> None:
        triton = HttpTriton(url)
        x = {"x": np.zeros((1, 1), np.float32)}
        for _ in range(3):
            answer = await triton.infer("m", 1, x, [], 5.0)
            np.testing.assert_array_equal(answer["y"], y)
            await asyncio.sleep(0.2)
        await triton.close()

    gc.collect()
    gc.disable()  # freed by reference counting alone, not left for a later collection
    try:
        asyncio.run(with_server(one_answer_then_close, body))
        assert connections == 3
        # Each closed connection was freed at once: no cycle left through httptools' parser.
        assert not [o for o in gc.get_objects() if isinstance(o, triton_http._Connection)]
    finally:
        gc.enable()


def test_deadline_and_errors_map_to_codes() -> None:
    async def slow_or_failing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                request = await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            if b"/models/slow/" in request:
                await asyncio.sleep(2)
                return
            status = int(request.split(b"/models/")[1].split(b"/")[0])
            body = orjson.dumps({"error": f"status {status}"})
            writer.write(
                b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body)
            )
            await writer.drain()

    async def body(url: str) -> None:
        triton = HttpTriton(url)
        x = {"x": np.zeros((1, 1), np.float32)}
        with pytest.raises(ServingError) as caught:
            await triton.infer("slow", 1, x, [], 0.2)
        assert caught.value.code == Code.DEADLINE_EXCEEDED
        expected = {400: Code.INVALID_ARGUMENT, 500: Code.INTERNAL, 501: Code.UNIMPLEMENTED}
        for status, code in expected.items():
            with pytest.raises(ServingError) as caught:
                await triton.infer(str(status), 1, x, [], 1.0)
            assert (caught.value.code, caught.value.message) == (code, f"status {status}")
            assert not isinstance(caught.value, InstanceUnavailable)
        for status in (404, 503):
            with pytest.raises(InstanceUnavailable):
                await triton.infer(str(status), 1, x, [], 1.0)
        await triton.close()

    asyncio.run(with_server(slow_or_failing, body))


def test_answer_without_binary_data_is_read_from_json() -> None:
    class Answer:
        status, keep_alive = 200, True
        body = orjson.dumps(
            {"outputs": [{"name": "y", "datatype": "INT64", "shape": [2], "data": [1, 2]}]}
        )
        header_length = len(body)

    decoded = decode_infer(Answer())  # type: ignore[arg-type]
    assert decoded["y"].dtype == np.int64 and decoded["y"].tolist() == [1, 2]


def test_a_call_waiting_on_a_silent_triton_fails_unavailable_once_aborted() -> None:
    """A Triton gone with its host sends no reset: the call would wait for its whole deadline.
    Once its probe fails (abort_calls), the call is sent again on a new connection, and fails
    UNAVAILABLE when none opens."""
    accepted = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        await reader.read()  # reads, never answers

    async def body(server: asyncio.Server, url: str) -> None:
        triton = HttpTriton(url)
        x = {"x": np.zeros((1, 1), np.float32)}
        call = asyncio.ensure_future(triton.infer("m", 1, x, [], 60.0))
        await asyncio.wait_for(accepted.wait(), 5)
        await asyncio.sleep(0.1)
        assert not call.done()
        server.close()  # nothing listens any more: the new connection is refused
        await server.wait_closed()
        triton.abort_calls()
        with pytest.raises(InstanceUnavailable):
            await asyncio.wait_for(call, 5)  # at once, not after the 60 s deadline
        await triton.close()

    async def main() -> None:
        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        await body(server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")

    asyncio.run(main())


def test_a_failed_probe_ends_the_calls_waiting_on_that_triton() -> None:
    """The gateway's client: a Triton that stops answering (its probe gets no answer within
    1 s) has its waiting calls ended UNAVAILABLE instead of left to their deadline."""
    from gateway.upstream import TritonInferenceClient

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async def main() -> None:
        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        client = TritonInferenceClient(url, default_timeout=60.0)
        x = {"x": np.zeros((1, 1), np.float32)}
        call = asyncio.ensure_future(client.infer("m", 1, x, []))
        await asyncio.sleep(0.1)
        server.close()
        await server.wait_closed()
        started = asyncio.get_running_loop().time()
        await client.probe()  # no answer within its second: not ready
        assert not client.any_ready()
        with pytest.raises(ServingError) as raised:
            await asyncio.wait_for(call, 5)
        assert raised.value.code == Code.UNAVAILABLE
        assert asyncio.get_running_loop().time() - started < 5
        await client.close()

    asyncio.run(main())


def test_a_triton_answering_not_ready_still_finishes_its_calls() -> None:
    """Shutting down, Triton answers its probe "not ready" and finishes the calls it has: they
    are not ended early."""
    from gateway.upstream import TritonInferenceClient

    y = np.array([[2.5]], dtype=np.float32)

    async def shutting_down(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while request := await read_request(reader):
            if request.startswith(b"GET /v2/health/ready"):
                writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            else:
                await asyncio.sleep(0.5)
                writer.write(answer_bytes(y))
            await writer.drain()

    async def body(url: str) -> None:
        client = TritonInferenceClient(url, default_timeout=60.0)
        x = {"x": np.zeros((1, 1), np.float32)}
        call = asyncio.ensure_future(client.infer("m", 1, x, []))
        await asyncio.sleep(0.1)
        await client.probe()
        assert not client.any_ready()
        answer = await asyncio.wait_for(call, 5)
        np.testing.assert_array_equal(answer["y"], y)
        await client.close()

    asyncio.run(with_server(shutting_down, body))


def test_a_connection_that_never_opens_fails_unavailable_within_the_connect_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Opening a connection is bounded by itself, not only by the call's deadline: a Triton
    container gone leaves an address that drops the handshake (or a name Docker's DNS cannot
    resolve quickly), and a call must fail UNAVAILABLE for another instance or the client to
    retry, not hang for its 60 s deadline."""
    monkeypatch.setattr(triton_http, "CONNECT_SECONDS", 0.3)

    async def main(url: str) -> None:
        triton = HttpTriton(url)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(InstanceUnavailable, match="no connection within 0.3 s"):
            await asyncio.wait_for(
                triton.infer("m", 1, {"x": np.zeros((1, 1), np.float32)}, [], 60.0), 10
            )
        assert 0.25 <= loop.time() - started < 3
        # The probe's own second bounds its connection too: not ready, not hung.
        started = loop.time()
        assert not await asyncio.wait_for(triton.ready(), 10)
        assert loop.time() - started < 3
        await triton.close()

    with NeverAccepting() as port:
        asyncio.run(main(port.url))


def test_a_deadline_shorter_than_the_connect_bound_ends_the_call_at_the_deadline() -> None:
    """The call's timeout covers connecting and answering together: with 0.4 s left and no
    connection opening, the call ends DEADLINE_EXCEEDED at 0.4 s (nothing ran on Triton, and
    no time is left to try another instance), not UNAVAILABLE after the 2 s connect bound."""

    async def main(url: str) -> None:
        triton = HttpTriton(url)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(ServingError) as raised:
            await asyncio.wait_for(
                triton.infer("m", 1, {"x": np.zeros((1, 1), np.float32)}, [], 0.4), 10
            )
        assert raised.value.code == Code.DEADLINE_EXCEEDED
        assert 0.35 <= loop.time() - started < 1.5
        await triton.close()

    with NeverAccepting() as port:
        asyncio.run(main(port.url))


def test_the_gateway_client_answers_unavailable_while_its_only_triton_accepts_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the gateway's client, single instance (compose's topology): each call during
    the outage ends UNAVAILABLE within the connect bound, then calls succeed again once a
    Triton answers at that address."""
    from gateway.upstream import TritonInferenceClient

    monkeypatch.setattr(triton_http, "CONNECT_SECONDS", 0.3)
    y = np.array([[0.5]], dtype=np.float32)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer_bytes(y))
        await writer.drain()

    async def main(port: NeverAccepting) -> None:
        client = TritonInferenceClient(port.url, default_timeout=60.0)
        x = {"x": np.zeros((1, 1), np.float32)}
        loop = asyncio.get_running_loop()
        for _ in range(3):
            started = loop.time()
            with pytest.raises(ServingError) as raised:
                await asyncio.wait_for(client.infer("m", 1, x, []), 10)
            assert raised.value.code == Code.UNAVAILABLE
            assert loop.time() - started < 3
        port.close()  # Triton back at the same address: it accepts and answers
        server = await asyncio.start_server(answer, "127.0.0.1", port.port, reuse_address=True)
        try:
            result = await asyncio.wait_for(client.infer("m", 1, x, []), 10)
            np.testing.assert_array_equal(result["y"], y)
        finally:
            server.close()
            await client.close()

    with NeverAccepting() as port:
        asyncio.run(main(port))


class Counting:
    """A scripted Triton: each answer's y is the number of the request it answers (in order of
    arrival, across connections); model ``slow`` answers after 0.3 s, ``never`` does not."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests = 0

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        while True:
            try:
                request = await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            self.requests += 1
            number = self.requests
            if b"/models/never/" in request:
                await reader.read()
                return
            if b"/models/slow/" in request:
                await asyncio.sleep(0.3)
            writer.write(answer_bytes(np.array([[number]], np.float32)))
            await writer.drain()


X = {"x": np.zeros((1, 1), np.float32)}


async def number(triton: HttpTriton, model: str = "m", timeout: float = 2.0) -> int:
    return int((await triton.infer(model, 1, X, [], timeout))["y"][0, 0])


def test_a_call_given_up_leaves_its_connection_to_serve_once_its_answer_is_dropped() -> None:
    """Past its deadline or cancelled, a call's connection reads the answer it was owed and
    drops it, then serves the next call with that call's own answer; no new connection."""
    server = Counting()

    async def body(url: str) -> None:
        triton = HttpTriton(url)
        with pytest.raises(ServingError) as caught:
            await number(triton, "slow", 0.05)
        assert caught.value.code == Code.DEADLINE_EXCEEDED
        assert await number(triton) == 2  # meanwhile: on a second connection
        assert server.connections == 2
        await asyncio.sleep(0.4)  # request 1's answer read and dropped
        call = asyncio.ensure_future(number(triton, "slow"))
        await asyncio.sleep(0.05)
        call.cancel()  # the caller leaves
        await asyncio.sleep(0.4)
        assert [await number(triton) for _ in range(4)] == [4, 5, 6, 7]
        assert server.connections == 2
        await triton.close()

    asyncio.run(with_server(server, body))


def test_a_flood_of_calls_given_up_opens_no_connection_afterwards() -> None:
    server = Counting()

    async def body(url: str) -> None:
        triton = HttpTriton(url)
        flood = await asyncio.gather(
            *(number(triton, "slow", 0.05) for _ in range(20)), return_exceptions=True
        )
        assert all(isinstance(e, ServingError) for e in flood)
        await asyncio.sleep(0.5)
        answers = await asyncio.gather(*(number(triton) for _ in range(20)))
        assert sorted(answers) == list(range(21, 41))
        assert server.connections == 20
        await triton.close()

    asyncio.run(with_server(server, body))


def test_a_connection_owed_an_answer_that_never_comes_is_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The backstop (DRAIN_SECONDS), and a failed probe (abort_calls) drops such connections."""
    monkeypatch.setattr(triton_http, "DRAIN_SECONDS", 0.2)
    server = Counting()

    async def body(url: str) -> None:
        triton = HttpTriton(url)
        for _ in range(2):
            with pytest.raises(ServingError):
                await number(triton, "never", 0.05)
        assert len(triton._draining) == 2
        await asyncio.sleep(0.4)
        assert not triton._draining
        assert await number(triton) == 3 and server.connections == 3
        with pytest.raises(ServingError):
            await number(triton, "never", 0.05)
        assert len(triton._draining) == 1
        triton.abort_calls()
        await asyncio.sleep(0.05)
        assert not triton._draining
        assert await number(triton) == 5 and server.connections == 4
        await triton.close()

    asyncio.run(with_server(server, body))


class Recorded:
    """A hold (gateway/types.py) that records when it was kept and released."""

    def __init__(self) -> None:
        self.events: list[tuple[str, float]] = []

    def keep(self) -> None:
        self.events.append(("keep", asyncio.get_running_loop().time()))

    def release(self) -> None:
        self.events.append(("release", asyncio.get_running_loop().time()))

    def said(self) -> list[str]:
        return [event for event, _ in self.events]

    def held_for(self) -> float:
        (_, kept), (_, released) = self.events
        return released - kept


def test_the_hold_of_a_call_given_up_is_kept_until_its_answer_or_connection_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kept when the caller gives up with the answer owed (deadline or leaving), released once
    that answer is read (Triton done with the call), or its connection closed by the backstop or
    dropped by abort_calls; a call answered says nothing; one whose connection is closed instead
    (as many waiting as may lie idle) is not kept."""
    monkeypatch.setattr(triton_http, "DRAIN_SECONDS", 0.2)
    server = Counting()

    async def give_up(triton: HttpTriton, model: str, leave: bool = False) -> Recorded:
        hold = Recorded()
        call = asyncio.ensure_future(triton.infer(model, 1, X, [], None if leave else 0.05, hold))
        if leave:
            await asyncio.sleep(0.05)
            call.cancel()
        with pytest.raises((ServingError, asyncio.CancelledError)):
            await call
        assert hold.said() == ["keep"]
        return hold

    async def body(url: str) -> None:
        triton = HttpTriton(url)
        answered = Recorded()
        await triton.infer("m", 1, X, [], 2.0, answered)
        assert answered.said() == []
        for leave in (False, True):
            hold = await give_up(triton, "slow", leave)
            await asyncio.sleep(0.4)
            assert hold.said() == ["keep", "release"]
            assert 0.2 <= hold.held_for() < 0.35  # Triton's 0.3 s, from 50 ms in
        backstop = await give_up(triton, "never")
        await asyncio.sleep(0.4)
        assert backstop.said() == ["keep", "release"] and backstop.held_for() < 0.35
        aborted = await give_up(triton, "never")
        triton.abort_calls()
        await asyncio.sleep(0.05)
        assert aborted.said() == ["keep", "release"]
        monkeypatch.setattr(triton_http, "KEEP_IDLE", 1)
        await give_up(triton, "never")
        lost = Recorded()
        with pytest.raises(ServingError):
            await triton.infer("never", 1, X, [], 0.05, lost)
        assert lost.said() == []  # its connection closed: nothing to wait for
        await triton.close()

    asyncio.run(with_server(server, body))
