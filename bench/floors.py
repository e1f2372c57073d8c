"""What the front-door libraries cost doing nothing: the floor under the gateway's CPU targets.

A do-nothing server per library answers half_plus_two's fixed Predict answer: tfsgate's own
HTTP/2 gRPC server (``gateway/grpc_h2.py``, the gRPC door's), grpcio's asyncio server (the door's
before, and still with TLS), the same behind a pass-through interceptor, on uvloop, and grpcio's
thread-pool server; uvicorn with httptools (as tfsgate's REST door) on asyncio and on
uvloop; and the alternatives issue 11 names for the REST door: granian (Rust HTTP server, the
same ASGI app, asyncio loop, one worker process) and a bare asyncio protocol with httptools'
parser (no ASGI layer at all). The benchmark loads each with the same h2load/wrk command as the gateway and divides
the server process's CPU by its requests: no target below these figures is reachable with that
library on this machine. Run one by hand: ``python -m bench.floors grpc-aio 9000``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from concurrent import futures
from typing import Any

KINDS = (
    "grpc-h2",
    "grpc-aio",
    "grpc-aio-interceptor",
    "grpc-aio-uvloop",
    "grpc-sync",
    "rest",
    "rest-uvloop",
    "rest-granian",
    "rest-bare",
)
_REST_BODY = b'{"predictions":[[2.5],[3.0],[4.5]]}'
_REST_HEADERS = [(b"content-type", b"application/json")]


def _response() -> Any:
    from tfsgate.core import protos

    response = protos.predict_pb2.PredictResponse()
    response.model_spec.name = "half_plus_two"
    response.model_spec.version.value = 2
    tensor = response.outputs["y"]
    tensor.dtype = protos.types_pb2.DT_FLOAT
    tensor.tensor_shape.dim.add(size=3)
    tensor.tensor_shape.dim.add(size=1)
    tensor.float_val.extend([2.5, 3.0, 4.5])
    return response


def _serve_grpc_h2(port: int) -> None:
    import grpc

    from bench.bodies import PREDICT_PATH
    from gateway.grpc_h2 import Http2GrpcServer
    from tfsgate.core import protos

    answer = _response()

    async def predict(request: Any, context: Any) -> Any:
        return answer

    handler = grpc.unary_unary_rpc_method_handler(
        predict,
        request_deserializer=protos.predict_pb2.PredictRequest.FromString,
        response_serializer=protos.predict_pb2.PredictResponse.SerializeToString,
    )

    async def main() -> None:
        server = Http2GrpcServer({PREDICT_PATH: handler}, max_receive=2**31 - 1, max_send=2**31 - 1)
        await server.listen_tcp("127.0.0.1", port, False)
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def _serve_grpc(kind: str, port: int) -> None:
    import grpc

    from tfsgate.core import protos

    answer = _response()
    base = protos.prediction_service_pb2_grpc.PredictionServiceServicer
    add = protos.prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server
    if kind == "grpc-sync":

        class SyncService(base):  # type: ignore[misc, valid-type]
            def Predict(self, request: Any, context: Any) -> Any:  # noqa: N802
                return answer

        server = grpc.server(futures.ThreadPoolExecutor(8))
        add(SyncService(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        server.start()
        print("ready", flush=True)
        server.wait_for_termination()
        return

    class AioService(base):  # type: ignore[misc, valid-type]
        async def Predict(self, request: Any, context: Any) -> Any:  # noqa: N802
            return answer

    class PassThrough(grpc.aio.ServerInterceptor):
        """A wrapper per call, as tfsgate's error interceptor makes."""

        async def intercept_service(
            self,
            continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
            details: grpc.HandlerCallDetails,
        ) -> grpc.RpcMethodHandler:
            handler = await continuation(details)
            inner = handler.unary_unary

            async def guarded(request: Any, context: Any) -> Any:
                return await inner(request, context)

            return grpc.unary_unary_rpc_method_handler(
                guarded,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )

    async def main() -> None:
        interceptors = [PassThrough()] if kind == "grpc-aio-interceptor" else []
        server = grpc.aio.server(interceptors=interceptors)
        add(AioService(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        print("ready", flush=True)
        await server.wait_for_termination()

    if kind == "grpc-aio-uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main())
    else:
        asyncio.run(main())


async def rest_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": _REST_HEADERS})
    await send({"type": "http.response.body", "body": _REST_BODY})


def _serve_rest(kind: str, port: int) -> None:
    import uvicorn

    config = uvicorn.Config(
        rest_app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        http="httptools",
    )
    server = uvicorn.Server(config)

    async def main() -> None:
        task = asyncio.ensure_future(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        print("ready", flush=True)
        await task

    if kind == "rest-uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main())
    else:
        asyncio.run(main())


def _serve_granian(port: int) -> None:
    from granian.constants import Interfaces, Loops
    from granian.server import Server

    print("ready", flush=True)
    Server(
        "bench.floors:rest_app",
        address="127.0.0.1",
        port=port,
        interface=Interfaces.ASGI,
        workers=1,
        loop=Loops.asyncio,
        log_enabled=False,
    ).serve()


class _BareHttp(asyncio.Protocol):
    """HTTP/1.1 keep-alive with httptools' parser and nothing else: every request answered with
    the fixed body (what a hand-written door would cost before any work)."""

    def __init__(self) -> None:
        import httptools  # type: ignore[import-untyped]

        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._answer = (
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (len(_REST_BODY), _REST_BODY)
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def on_message_complete(self) -> None:
        assert self._transport is not None
        self._transport.write(self._answer)


def _serve_bare(port: int) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_BareHttp, "127.0.0.1", port)
        print("ready", flush=True)
        await server.serve_forever()

    asyncio.run(main())


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind not in KINDS:
        raise SystemExit(f"kind is one of {', '.join(KINDS)}")
    if kind == "grpc-h2":
        _serve_grpc_h2(port)
    elif kind.startswith("grpc"):
        _serve_grpc(kind, port)
    elif kind == "rest-granian":
        _serve_granian(port)
    elif kind == "rest-bare":
        _serve_bare(port)
    else:
        _serve_rest(kind, port)


if __name__ == "__main__":
    main()
