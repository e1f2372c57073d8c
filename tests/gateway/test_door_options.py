"""The front doors' TF Serving options in process, with a data plane that waits on demand:
--grpc_max_threads bounds concurrent gRPC calls (RESOURCE_EXHAUSTED past it, as from TF Serving's
exhausted thread quota), --rest_api_num_threads bounds concurrently handled REST requests (the
rest wait, as in its thread pool), --rest_api_enable_cors_support (TF Serving's CORS headers and
OPTIONS preflight), --grpc_channel_arguments parsing, --monitoring_config_file. The REST door is
served on a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import orjson
import pytest

from gateway import large_bodies, metrics
from gateway.grpc_service import GrpcOptions, GrpcServer
from gateway.rest import RestOptions, RestServer
from gateway.types import PredictResult, ServedSpec
from tests.support.servers import free_port
from tests.support.waiting import until
from tfsgate.core import protos
from tfsgate.core.signatures import SignatureSpec, TensorSpec
from tfsgate.settings import ServeSettings
from tfsgate.startup import (
    StartupError,
    channel_args,
    front_door_options,
    metrics_path,
    session_threads,
)

SIGNATURE = SignatureSpec(
    "serving_default",
    "tensorflow/serving/predict",
    {"x": TensorSpec("x", "x:0", "DT_FLOAT", (-1,))},
    {"y": TensorSpec("y", "y:0", "DT_FLOAT", (-1,))},
)


class GatedDataPlane:
    """predict() waits for ``gate``; counts how many wait at once."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.inside = 0
        self.most = 0

    async def predict(self, ref: Any, inputs: Any, *args: Any, **kwargs: Any) -> PredictResult:
        self.inside += 1
        self.most = max(self.most, self.inside)
        await self.gate.wait()
        self.inside -= 1
        y = np.array([1.0], dtype=np.float32)
        return PredictResult(ServedSpec(ref.name, 1, "serving_default"), {"y": y}, SIGNATURE)


class Settings:
    host = "127.0.0.1"
    grpc_socket_path = ""
    enable_serialization_as_tensor_content = False

    def __init__(self) -> None:
        self.port = free_port()


def _request() -> Any:
    request = protos.predict_pb2.PredictRequest()
    request.model_spec.name = "m"
    request.inputs["x"].dtype = protos.types_pb2.DT_FLOAT
    request.inputs["x"].tensor_shape.dim.add(size=1)
    request.inputs["x"].float_val.append(1.0)
    return request


# No channel arguments: the door's own HTTP/2 server; one only grpc's core knows: grpc.aio's.
SERVERS = pytest.mark.parametrize(
    "args", [(), (("grpc.max_connection_age_ms", 600000),)], ids=["own", "grpc.aio"]
)


@SERVERS
async def test_grpc_max_threads_refuses_past_the_limit(args: tuple[tuple[str, int], ...]) -> None:
    dataplane = GatedDataPlane()
    settings = Settings()
    options = GrpcOptions(max_concurrent_rpcs=2, channel_args=args)
    server = GrpcServer(dataplane, settings, None, options)  # type: ignore[arg-type]
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.port}") as channel:
            stub = protos.prediction_service_pb2_grpc.PredictionServiceStub(channel)
            first = [asyncio.ensure_future(stub.Predict(_request(), timeout=30)) for _ in range(2)]
            while dataplane.inside < 2:
                await asyncio.sleep(0.01)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Predict(_request(), timeout=30)
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            dataplane.gate.set()
            for call in first:
                assert list((await call).outputs["y"].float_val) == [1.0]
    finally:
        await server.stop(0)


@pytest.mark.parametrize(
    ("options", "own"),
    [
        (GrpcOptions(), True),
        (GrpcOptions(channel_args=(("grpc.max_receive_message_length", 64),)), True),
        (GrpcOptions(reuse_port=True, channel_args=(("grpc.so_reuseaddr", 1),)), True),
        (GrpcOptions(channel_args=(("grpc.keepalive_time_ms", 1000),)), False),
        (GrpcOptions(credentials=grpc.local_server_credentials()), False),
    ],
)
async def test_which_server_the_grpc_door_runs_on(options: GrpcOptions, own: bool) -> None:
    server = GrpcServer(GatedDataPlane(), Settings(), None, options)  # type: ignore[arg-type]
    assert (server._own is not None, server._aio is not None) == (own, not own)


@SERVERS
async def test_grpc_message_size_arguments_hold_on_both_servers(
    args: tuple[tuple[str, int], ...],
) -> None:
    """--grpc_channel_arguments=grpc.max_receive_message_length=N: a larger request is
    RESOURCE_EXHAUSTED, a smaller one answered, on either server."""
    dataplane = GatedDataPlane()
    dataplane.gate.set()
    settings = Settings()
    limits = (("grpc.max_receive_message_length", 200), *args)
    server = GrpcServer(dataplane, settings, None, GrpcOptions(channel_args=limits))  # type: ignore[arg-type]
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{settings.port}") as channel:
            stub = protos.prediction_service_pb2_grpc.PredictionServiceStub(channel)
            answer = await stub.Predict(_request(), timeout=30)
            assert list(answer.outputs["y"].float_val) == [1.0]
            big = _request()
            big.inputs["x"].float_val.extend([2.0] * 100)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Predict(big, timeout=30)
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        await server.stop(0)


@dataclass
class RestSettings:
    host: str = "127.0.0.1"
    rest_api_port: int = 0
    rest_api_timeout_in_ms: int = 0
    rest_api_enable_cors_support: bool = False


@asynccontextmanager
async def rest_door(
    dataplane: GatedDataPlane, options: RestOptions, cors: bool = False
) -> AsyncIterator[httpx.AsyncClient]:
    settings = RestSettings(rest_api_enable_cors_support=cors)
    server = RestServer(dataplane, settings, options)  # type: ignore[arg-type]
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            yield client
    finally:
        await server.stop()


async def test_rest_num_threads_queues_past_the_limit() -> None:
    dataplane = GatedDataPlane()
    async with rest_door(dataplane, RestOptions(max_concurrent=3)) as client:
        calls = [
            asyncio.ensure_future(client.post("/v1/models/m:predict", json={"instances": [1.0]}))
            for _ in range(8)
        ]
        await asyncio.sleep(0.3)
        assert dataplane.inside == 3  # the other five wait for a slot, none is refused
        dataplane.gate.set()
        answers = await asyncio.gather(*calls)
    assert [a.status_code for a in answers] == [200] * 8
    assert dataplane.most == 3


async def test_rest_large_bodies_reads_that_many_at_once() -> None:
    """--rest_large_bodies: past it, large bodies wait unread (gateway/large_bodies.py) while
    small ones pass."""
    dataplane = GatedDataPlane()
    body = orjson.dumps({"instances": [0.5] * 300_000})
    assert len(body) > large_bodies.THRESHOLD
    async with rest_door(dataplane, RestOptions(large_bodies=1)) as client:
        large = [
            asyncio.ensure_future(client.post("/v1/models/m:predict", content=body))
            for _ in range(3)
        ]
        await until(lambda: dataplane.inside == 1, timeout=10.0)
        await asyncio.sleep(0.3)
        assert dataplane.inside == 1  # the other two wait, unread
        small = asyncio.ensure_future(
            client.post("/v1/models/m:predict", json={"instances": [1.0]})
        )
        await until(lambda: dataplane.inside == 2, timeout=10.0)
        dataplane.gate.set()
        answers = await asyncio.gather(*large, small)
    assert [a.status_code for a in answers] == [200] * 4
    assert dataplane.most == 2


def test_rest_large_bodies_flag_reaches_the_rest_door(monkeypatch: pytest.MonkeyPatch) -> None:
    assert RestOptions().large_bodies == large_bodies.LIMIT
    # front_door_options also turns TF Serving's series on or off, process-wide: restored after.
    monkeypatch.setattr(metrics, "_tf_serving", metrics._tf_serving)
    _, options = front_door_options(ServeSettings(rest_large_bodies=3))
    assert options.large_bodies == 3


CORS = {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "POST, GET",
    "access-control-allow-headers": "Content-Type",
}


def _cors(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


async def test_cors_headers_as_tf_serving_adds_them() -> None:
    """http_server.cc adds AddCORSHeaders' three headers to every REST answer, errors too."""
    dataplane = GatedDataPlane()
    dataplane.gate.set()
    async with rest_door(dataplane, RestOptions(), cors=True) as client:
        origin = {"Origin": "http://example.test"}
        answer = await client.post(
            "/v1/models/m:predict", json={"instances": [1.0]}, headers=origin
        )
        assert answer.status_code == 200 and _cors(answer) == CORS
        assert answer.headers["x-model-version"] == "1" and answer.headers["x-request-id"]
        error = await client.get("/v1/models/m:predict", headers=origin)
        assert error.status_code == 400 and _cors(error) == CORS
        assert error.json() == {"error": "Malformed request: GET /v1/models/m:predict"}
        page = await client.get("/monitoring/prometheus/metrics")  # not the REST dispatcher
        assert page.status_code == 200 and _cors(page) == {}


@pytest.mark.parametrize("cors", [True, False], ids=["cors", "no-cors"])
async def test_options_preflight_as_tf_serving_answers_it(cors: bool) -> None:
    """OPTIONS is answered by TF Serving's dispatcher itself, with or without CORS support: 200
    when Origin names an http(s) origin, 400 (FAILED_PRECONDITION) otherwise; empty bodies."""
    async with rest_door(GatedDataPlane(), RestOptions(), cors=cors) as client:
        preflight = await client.options(
            "/v1/models/m:predict",
            headers={"Origin": "https://app.test", "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 200 and preflight.content == b""
        assert _cors(preflight) == (CORS if cors else {})
        missing = await client.options("/v1/models/m:predict")
        assert missing.status_code == 400 and missing.content == b""
        assert _cors(missing) == (CORS if cors else {})


def test_channel_arguments_as_tf_serving_parses_them() -> None:
    assert channel_args("grpc.so_reuseaddr=1,grpc.max_connection_age_ms=2000") == (
        ("grpc.so_reuseaddr", 1),
        ("grpc.max_connection_age_ms", 2000),
    )
    assert channel_args("grpc.primary_user_agent=tfs,grpc.x=99999999999") == (
        ("grpc.primary_user_agent", "tfs"),
        ("grpc.x", "99999999999"),  # not an int32: passed as a string
    )
    assert channel_args("") == ()
    with pytest.raises(StartupError, match="expected key=value"):
        channel_args("grpc.so_reuseaddr")


@pytest.mark.parametrize(
    ("text", "path"),
    [
        (None, "/monitoring/prometheus/metrics"),
        ("prometheus_config { enable: true }", "/monitoring/prometheus/metrics"),
        ('prometheus_config { enable: true path: "/m" }', "/m"),
        ('prometheus_config { enable: false path: "/m" }', None),
    ],
)
def test_monitoring_config(tmp_path: Path, text: str | None, path: str | None) -> None:
    file = tmp_path / "monitoring.config"
    if text is not None:
        file.write_text(text)
    settings = ServeSettings(monitoring_config_file=str(file) if text is not None else "")
    assert metrics_path(settings) == path


def test_monitoring_config_parse_error(tmp_path: Path) -> None:
    file = tmp_path / "monitoring.config"
    file.write_text("prometheus_config { enabled: true }")
    with pytest.raises(StartupError) as caught:
        metrics_path(ServeSettings(monitoring_config_file=str(file)))
    assert caught.value.message == f"Invalid protobuf file: '{file}'"
    assert caught.value.parse_error.startswith(
        "Error parsing text-format tensorflow.serving.MonitoringConfig: 1:21: "
    )


@pytest.mark.parametrize(
    ("flags", "threads"),
    [
        ({}, (0, 0)),
        ({"tensorflow_session_parallelism": 4}, (4, 4)),
        ({"tensorflow_session_parallelism": 4, "tensorflow_intra_op_parallelism": 2}, (2, 0)),
        ({"tensorflow_inter_op_parallelism": 3}, (0, 3)),
    ],
)
def test_session_threads_as_build_and_start_fills_them(
    flags: dict[str, int], threads: tuple[int, int]
) -> None:
    assert session_threads(ServeSettings(**flags)) == threads


def test_session_config_file_then_flags(tmp_path: Path) -> None:
    file = tmp_path / "session.config"
    file.write_text("intra_op_parallelism_threads: 6 inter_op_parallelism_threads: 5")
    settings = ServeSettings(tensorflow_session_config_file=str(file))
    assert session_threads(settings) == (6, 5)
    overridden = ServeSettings(
        tensorflow_session_config_file=str(file), tensorflow_session_parallelism=1
    )
    assert session_threads(overridden) == (1, 1)
