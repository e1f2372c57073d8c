"""Cold start and single-request latency: through tfsgate (REST, gRPC) vs straight to Triton.

Run by hand: ``.venv/bin/python bench/latency.py [--requests 1000]``. Starts a real
``tfsgate serve`` over a fresh half_plus_two SavedModel, times spawn -> first REST prediction, then
sends the same request (x = [[1], [2], [5]]) one at a time on each path and prints medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx
import numpy as np
from tritonclient.grpc import service_pb2, service_pb2_grpc

from tfsgate.core import protos
from tfsgate.core.naming import shared_model_name, tensor_prefix
from tfsgate.core.signatures import DEFAULT_SIGNATURE

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import spawn_serve, write_half_plus_two  # noqa: E402

from tests.support.servers import stop_server  # noqa: E402

X = [[1.0], [2.0], [5.0]]


def timed(call: Callable[[], object], count: int) -> list[float]:
    for _ in range(min(50, count)):
        call()  # warm channels and the model
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    body = {"instances": X}
    base = write_half_plus_two()
    started = time.perf_counter()
    server = spawn_serve(base)
    process, grpc_port, home = server.process, server.grpc_port, server.home
    rest = httpx.Client(base_url=server.rest_url, timeout=30)
    try:
        while True:
            try:
                if rest.post("/v1/models/half_plus_two:predict", json=body).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None:
                raise SystemExit("tfsgate serve exited")
            time.sleep(0.05)
        cold_start = time.perf_counter() - started
        endpoints = json.loads((home / "triton" / "endpoints.json").read_text())
        results = measure(rest, grpc_port, endpoints, args.requests)
    finally:
        stop_server(server)
    print(f"cold start (spawn -> first REST prediction): {cold_start:.2f} s")
    print(f"{'path':38} {'median ms':>10} {'p90 ms':>8} {'p99 ms':>8}")
    for name, samples in results.items():
        q = statistics.quantiles(samples, n=100)
        print(f"{name:38} {statistics.median(samples):10.3f} {q[89]:8.3f} {q[98]:8.3f}")


def measure(
    rest: httpx.Client, grpc_port: int, endpoints: dict[str, str], count: int
) -> dict[str, list[float]]:
    """The same request four ways; each pair uses one client library, so only the hop differs."""
    array = np.array(X, dtype=np.float32)
    # The auto runner serves half_plus_two with ONNX Runtime: in the model's shared Triton model,
    # its tensors under the signature's prefix (tfsgate/core/naming.py).
    triton_model = shared_model_name("half_plus_two")
    triton_x = tensor_prefix(DEFAULT_SIGNATURE) + "x"

    triton_stub = service_pb2_grpc.GRPCInferenceServiceStub(
        grpc.insecure_channel(endpoints["grpc_url"])
    )
    infer = service_pb2.ModelInferRequest(model_name=triton_model)
    infer.inputs.add(name=triton_x, datatype="FP32", shape=[3, 1])
    infer.raw_input_contents.append(array.tobytes())

    triton_http = httpx.Client(base_url=endpoints["http_url"], timeout=30)
    triton_body = {"inputs": [{"name": triton_x, "shape": [3, 1], "datatype": "FP32", "data": X}]}

    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
    stub = protos.prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = protos.predict_pb2.PredictRequest()
    request.model_spec.name = "half_plus_two"
    tensor = request.inputs["x"]
    tensor.dtype = protos.types_pb2.DT_FLOAT
    tensor.tensor_shape.dim.add(size=3)
    tensor.tensor_shape.dim.add(size=1)
    tensor.float_val.extend(array.ravel().tolist())
    body = {"instances": X}

    return {
        "Triton gRPC ModelInfer, direct": timed(lambda: triton_stub.ModelInfer(infer), count),
        "tfsgate gRPC Predict": timed(lambda: stub.Predict(request), count),
        # raise_for_status on both HTTP paths: a refused request fails the run, not a fast sample.
        "Triton HTTP/JSON infer, direct": timed(
            lambda: triton_http.post(
                f"/v2/models/{triton_model}/infer", json=triton_body
            ).raise_for_status(),
            count,
        ),
        "tfsgate REST :predict": timed(
            lambda: rest.post("/v1/models/half_plus_two:predict", json=body).raise_for_status(),
            count,
        ),
    }


if __name__ == "__main__":
    main()
