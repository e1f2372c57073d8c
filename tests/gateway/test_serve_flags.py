"""REST/gRPC flags: --rest_api_timeout_in_ms, CORS, --grpc_socket_path and
--enable_serialization_as_tensor_content (once tfsgate's --grpc_tensor_content_answers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest

from tests.support.servers import ServerProcess, start_server
from tfsgate.core import protos

pytestmark = pytest.mark.triton  # starts tritonserver


@pytest.fixture(scope="module")
def flagged_server(
    half_plus_two: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, Path]]:
    home = tmp_path_factory.mktemp("flags-home")
    socket_path = home / "grpc.sock"
    args = [
        "--model_name=half_plus_two",
        f"--model_base_path={half_plus_two}",
        "--rest_api_timeout_in_ms=1",
        "--rest_api_enable_cors_support=true",
        f"--grpc_socket_path={socket_path}",
        "--enable_serialization_as_tensor_content",
    ]
    with start_server(home, args) as server:
        yield server, socket_path


def test_rest_timeout_is_504(flagged_server: tuple[ServerProcess, Path]) -> None:
    server, _ = flagged_server
    response = httpx.post(
        f"{server.rest_url}/v1/models/half_plus_two:predict", json={"instances": [1.0]}
    )
    assert response.status_code == 504
    assert "error" in response.json()


def test_cors_headers(flagged_server: tuple[ServerProcess, Path]) -> None:
    server, _ = flagged_server
    response = httpx.get(
        f"{server.rest_url}/v1/models/half_plus_two", headers={"Origin": "http://example.test"}
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in ("*", "http://example.test")
    preflight = httpx.options(
        f"{server.rest_url}/v1/models/half_plus_two:predict",
        headers={"Origin": "http://example.test", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 200
    assert "POST" in preflight.headers["access-control-allow-methods"]


def test_grpc_on_unix_socket(flagged_server: tuple[ServerProcess, Path]) -> None:
    _, socket_path = flagged_server
    request = protos.predict_pb2.PredictRequest()
    request.model_spec.name = "half_plus_two"
    tensor = request.inputs["x"]
    tensor.dtype = protos.types_pb2.DT_FLOAT
    tensor.tensor_shape.dim.add(size=1)
    tensor.tensor_shape.dim.add(size=1)
    tensor.float_val.append(2.0)
    with grpc.insecure_channel(f"unix:{socket_path}") as channel:
        stub = protos.prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=30)
    # tensor_content: raw little-endian bytes instead of float_val
    assert list(response.outputs["y"].float_val) == []
    assert np.frombuffer(response.outputs["y"].tensor_content, dtype="<f4").tolist() == [3.0]
