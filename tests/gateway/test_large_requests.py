"""Requests beyond the max batch size and gRPC's default 4 MB message limit."""

from __future__ import annotations

import grpc
import httpx
import numpy as np
import pytest

from tests.support.servers import ServerProcess
from tfsgate.core import protos

pytestmark = pytest.mark.triton  # starts tritonserver


def test_rest_batch_larger_than_max_batch_size(server: ServerProcess) -> None:
    values = [float(i) for i in range(1000)]  # the batcher's max_batch_size is 128
    response = httpx.post(
        f"{server.rest_url}/v1/models/half_plus_two:predict",
        json={"instances": values},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": [0.5 * v + 2.0 for v in values]}


def test_grpc_accepts_messages_above_four_megabytes(server: ServerProcess) -> None:
    request = protos.predict_pb2.PredictRequest()
    request.model_spec.name = "half_plus_two"
    tensor = request.inputs["not_an_input"]  # rejected by the signature, after it was received
    tensor.dtype = protos.types_pb2.DT_FLOAT
    tensor.tensor_shape.dim.add(size=2_000_000)
    tensor.tensor_shape.dim.add(size=1)
    tensor.tensor_content = np.zeros(2_000_000, dtype="<f4").tobytes()  # 8 MB
    options = [("grpc.max_send_message_length", 64 << 20)]
    with grpc.insecure_channel(server.grpc_target, options=options) as channel:
        stub = protos.prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Predict(request, timeout=60)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # not RESOURCE_EXHAUSTED


def test_three_million_rows_in_one_request(server: ServerProcess) -> None:
    """TF Serving runs any batch as one Session::Run; here one Triton call whose runner bounds each
    engine call (issue 8: it used to be 23,438 calls of 128 rows and a 504)."""
    rows = 3_000_000
    body = b'{"instances": [' + b",".join(b"[%d.0]" % (i % 1000) for i in range(rows)) + b"]}"
    response = httpx.post(
        f"{server.rest_url}/v1/models/half_plus_two:predict", content=body, timeout=120
    )
    assert response.status_code == 200, response.text[:500]
    predictions = np.array(response.json()["predictions"], dtype=np.float32)
    assert predictions.shape == (rows, 1)
    expected = 0.5 * (np.arange(rows, dtype=np.float32) % 1000) + 2.0
    np.testing.assert_array_equal(predictions[:, 0], expected)
