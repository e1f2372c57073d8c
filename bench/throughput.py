"""Throughput under concurrency: tfsgate gRPC/REST vs Triton gRPC directly, same model and request.

Run by hand: ``.venv/bin/python bench/throughput.py [--clients 16] [--seconds 10]``. Starts a real
``tfsgate serve`` over a fresh half_plus_two SavedModel; each path gets ``--clients`` concurrent
asyncio clients in a separate process (so the load generator does not share the gateway's cores
any more than on a real host: on this 2-core machine everything shares them).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tfsgate.core.naming import shared_model_name, tensor_prefix  # noqa: E402
from tfsgate.core.signatures import DEFAULT_SIGNATURE  # noqa: E402

CLIENT = r"""
import asyncio, json, sys, time
import numpy as np
kind, target, clients, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
triton_model, triton_x = sys.argv[5], sys.argv[6]
x = np.array([[1.0], [2.0], [5.0]], np.float32)

def make_call():
    if kind == "triton":
        import tritonclient.grpc.aio as tg
        client = tg.InferenceServerClient(target)
        inp = tg.InferInput(triton_x, [3, 1], "FP32"); inp.set_data_from_numpy(x)
        return lambda: client.infer(triton_model, [inp])
    if kind == "grpc":
        import grpc
        from tfsgate.core import protos
        channel = grpc.aio.insecure_channel(target)
        stub = protos.prediction_service_pb2_grpc.PredictionServiceStub(channel)
        req = protos.predict_pb2.PredictRequest(); req.model_spec.name = "half_plus_two"
        t = req.inputs["x"]; t.dtype = 1; t.tensor_shape.dim.add(size=3); t.tensor_shape.dim.add(size=1)
        t.tensor_content = x.tobytes()
        return lambda: stub.Predict(req)
    import httpx
    client = httpx.AsyncClient(base_url=target, limits=httpx.Limits(max_connections=clients))
    body = {"instances": x.tolist()}
    return lambda: client.post("/v1/models/half_plus_two:predict", json=body)

async def main():
    call = make_call()
    for _ in range(20):
        await call()
    done = 0
    deadline = time.perf_counter() + seconds
    async def worker():
        nonlocal done
        while time.perf_counter() < deadline:
            await call(); done += 1
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    print(json.dumps({"rps": done / (time.perf_counter() - start)}))
asyncio.run(main())
"""


# The auto runner serves half_plus_two with ONNX Runtime: in the model's shared Triton model, its
# tensors under the signature's prefix (tfsgate/core/naming.py).
TRITON_MODEL = shared_model_name("half_plus_two")
TRITON_X = tensor_prefix(DEFAULT_SIGNATURE) + "x"


def run_client(kind: str, target: str, clients: int, seconds: float) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CLIENT, kind, target, str(clients), str(seconds)]
        + [TRITON_MODEL, TRITON_X],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["rps"])


def main() -> None:
    from harness import spawn_serve, write_half_plus_two

    from tests.support.servers import stop_server, wait_until_serving

    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    server = spawn_serve(write_half_plus_two())
    grpc_port, rest_port, home = server.grpc_port, server.rest_port, server.home
    try:
        wait_until_serving(server, "half_plus_two")
        triton = json.loads((home / "triton" / "endpoints.json").read_text())["grpc_url"]
        results = {
            "Triton gRPC, direct": run_client("triton", triton, args.clients, args.seconds),
            "tfsgate gRPC Predict": run_client(
                "grpc", f"127.0.0.1:{grpc_port}", args.clients, args.seconds
            ),
            "tfsgate REST :predict": run_client(
                "rest", f"http://127.0.0.1:{rest_port}", args.clients, args.seconds
            ),
        }
    finally:
        stop_server(server)
    print(f"{args.clients} concurrent clients, {args.seconds:.0f} s each")
    base = results["Triton gRPC, direct"]
    for name, rps in results.items():
        print(f"{name:24} {rps:8.0f} req/s  ({rps / base:4.0%} of direct)")


if __name__ == "__main__":
    main()
