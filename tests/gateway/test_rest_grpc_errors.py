"""One table of error cases: REST and gRPC must give the matching TF status for each.

Runs against the session's real ``tfsgate serve`` (half_plus_two, version 123).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
import pytest

from tests.support.servers import ServerProcess
from tfsgate.core import protos

pytestmark = pytest.mark.triton  # starts tritonserver

MODEL = "half_plus_two"


@dataclass(frozen=True)
class Case:
    id: str
    http_status: int
    grpc_code: grpc.StatusCode
    message: str  # a fragment both protocols' messages contain
    path: str = MODEL  # REST path after /v1/models/
    body: dict[str, Any] = field(default_factory=lambda: {"instances": [1.0]})
    version: int | None = None
    label: str | None = None
    signature: str = ""
    inputs: dict[str, Any] = field(default_factory=lambda: {"x": [[1.0]]})
    name: str = MODEL
    grpc_message: str | None = None  # where TF's gRPC words differ from its REST words


CASES = [
    Case(
        "unknown model",
        404,
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Latest(nope)",
        path="nope",
        name="nope",
    ),
    Case(
        "unknown version",
        404,
        grpc.StatusCode.NOT_FOUND,
        f"Servable not found for request: Specific({MODEL}, 7)",
        path=f"{MODEL}/versions/7",
        version=7,
    ),
    Case(
        "unknown label",
        400,
        grpc.StatusCode.INVALID_ARGUMENT,
        "Unrecognized servable version label: canary",
        path=f"{MODEL}/labels/canary",
        label="canary",
    ),
    Case(
        "unknown signature",
        400,
        grpc.StatusCode.FAILED_PRECONDITION,
        'Serving signature name: "nope" not found in signature def',
        body={"signature_name": "nope", "instances": [1.0]},
        signature="nope",
    ),
    Case(
        "unknown input alias",
        400,
        grpc.StatusCode.INVALID_ARGUMENT,
        "Missing named input: x in 'inputs' object.",
        body={"inputs": {"z": [[1.0]]}},
        inputs={"z": [[1.0]]},
        grpc_message="input tensor alias not found in signature: z",
    ),
    Case(
        "wrong dtype",
        400,
        grpc.StatusCode.INVALID_ARGUMENT,
        "float",
        body={"instances": ["a string"]},
        inputs={"x": ["a string"]},
    ),
]


def _rest(server: ServerProcess, case: Case) -> httpx.Response:
    return httpx.post(
        f"{server.rest_url}/v1/models/{case.path}:predict", json=case.body, timeout=30
    )


def _tensor(values: list[Any]) -> Any:
    tensor = protos.tensor_pb2.TensorProto()
    nested = isinstance(values[0], list)
    flat = [v for row in values for v in row] if nested else values
    if isinstance(flat[0], str):
        tensor.dtype = protos.types_pb2.DT_STRING
        tensor.string_val.extend(v.encode() for v in flat)
        tensor.tensor_shape.dim.add(size=len(flat))
        return tensor
    tensor.dtype = protos.types_pb2.DT_FLOAT
    tensor.float_val.extend(flat)
    tensor.tensor_shape.dim.add(size=len(values))
    tensor.tensor_shape.dim.add(size=len(values[0]) if nested else 1)
    return tensor


def _grpc(server: ServerProcess, case: Case) -> grpc.RpcError:
    request = protos.predict_pb2.PredictRequest()
    request.model_spec.name = case.name
    if case.version is not None:
        request.model_spec.version.value = case.version
    if case.label is not None:
        request.model_spec.version_label = case.label
    request.model_spec.signature_name = case.signature
    for key, values in case.inputs.items():
        request.inputs[key].CopyFrom(_tensor(values))
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = protos.prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Predict(request, timeout=30)
    return caught.value


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rest_and_grpc_agree(server: ServerProcess, case: Case) -> None:
    response = _rest(server, case)
    assert response.status_code == case.http_status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert case.message in response.json()["error"]
    error = _grpc(server, case)
    assert error.code() == case.grpc_code, error.details()
    assert (case.grpc_message or case.message) in (error.details() or "")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/foo"),
        ("GET", f"/v1/models/{MODEL}:predict"),
        ("POST", f"/v1/models/{MODEL}/metadata"),
        ("POST", f"/v1/models/{MODEL}/versions/abc:predict"),
        ("POST", f"/v1/models/{MODEL}/versions/1/labels/x:predict"),
    ],
)
def test_malformed_paths_are_400(server: ServerProcess, method: str, path: str) -> None:
    response = httpx.request(method, f"{server.rest_url}{path}", json={"instances": [1.0]})
    assert response.status_code == 400
    assert response.json() == {"error": f"Malformed request: {method} {path}"}


def test_status_of_unknown_model(server: ServerProcess) -> None:
    response = httpx.get(f"{server.rest_url}/v1/models/nope", timeout=10)
    assert response.status_code == 404
    assert response.json() == {"error": "Could not find any versions of model nope"}


def test_grpc_model_status_resolves_labels_like_the_other_methods(server: ServerProcess) -> None:
    """GetModelStatus builds its model reference like the other methods and resolves a label
    with the same resolver: an unknown label is INVALID_ARGUMENT, as for Predict."""
    request = protos.get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL
    request.model_spec.version_label = "stable"
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = protos.model_service_pb2_grpc.ModelServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetModelStatus(request, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "Unrecognized servable version label: stable"


def test_missing_instances_key(server: ServerProcess) -> None:
    response = httpx.post(f"{server.rest_url}/v1/models/{MODEL}:predict", json={"foo": 1})
    assert response.status_code == 400
    assert response.json() == {"error": "Missing 'inputs' or 'instances' key"}


def test_gzip_request_body(server: ServerProcess) -> None:
    import gzip

    body = gzip.compress(b'{"instances": [1.0, 2.0]}')
    response = httpx.post(
        f"{server.rest_url}/v1/models/{MODEL}:predict",
        content=body,
        headers={"Content-Encoding": "gzip"},
    )
    assert response.json() == {"predictions": [2.5, 3.0]}


def test_gzip_bodies_inflate_no_further_than_tf_servings_limit(server: ServerProcess) -> None:
    """A body inflating past TF Serving's 10 MiB is refused while inflating (a bomb costs no
    more), as are corrupt and truncated ones; the server answers the next request."""
    import gzip

    from gateway.rest import MAX_INFLATED

    url = f"{server.rest_url}/v1/models/{MODEL}:predict"
    padded = b'{"instances": [1.0, 2.0]}' + b" " * (MAX_INFLATED - 25)
    at_limit = httpx.post(
        url, content=gzip.compress(padded), headers={"Content-Encoding": "gzip"}, timeout=60
    )
    assert at_limit.json() == {"predictions": [2.5, 3.0]}
    bomb = gzip.compress(b" " * (256 << 20))
    for body, error in (
        (bomb, f"more than {MAX_INFLATED} bytes inflated"),
        (gzip.compress(b'{"instances": [1.0]}')[:-9], "truncated"),
        (b"not gzip at all", "incorrect header check"),
    ):
        response = httpx.post(url, content=body, headers={"Content-Encoding": "gzip"}, timeout=60)
        assert response.status_code == 400
        assert error in response.json()["error"]
    assert httpx.post(url, json={"instances": [1.0]}).json() == {"predictions": [2.5]}


def test_grpc_health_service_answers(server: ServerProcess) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(server.grpc_target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_grpc_output_filter_and_typed_answer(server: ServerProcess) -> None:
    request = protos.predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.inputs["x"].CopyFrom(_tensor([[2.0], [4.0]]))
    request.output_filter.append("y")
    with grpc.insecure_channel(server.grpc_target) as channel:
        response = protos.prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            request
        )
    assert list(response.outputs["y"].float_val) == [3.0, 4.0]
    assert [d.size for d in response.outputs["y"].tensor_shape.dim] == [2, 1]


def test_grpc_tensor_content_request(server: ServerProcess) -> None:
    import numpy as np

    request = protos.predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    tensor = request.inputs["x"]
    tensor.dtype = protos.types_pb2.DT_FLOAT
    tensor.tensor_shape.dim.add(size=3)
    tensor.tensor_shape.dim.add(size=1)
    tensor.tensor_content = np.array([1, 2, 5], dtype="<f4").tobytes()
    with grpc.insecure_channel(server.grpc_target) as channel:
        response = protos.prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            request
        )
    assert list(response.outputs["y"].float_val) == [2.5, 3.0, 4.5]
