"""CPU per upstream call: the gateway's two Triton clients side by side (``gateway/upstream.py``).

Against a running tfsgate's embedded Triton (its ``$TFSGATE_HOME/triton/endpoints.json``), the
same half_plus_two tensor sent N times over Triton's HTTP endpoint (``gateway/triton_http.py``)
and over its gRPC endpoint (``gateway/triton_grpc.py``), with 1 and 16 calls in flight; CPU is
this process's (``time.process_time``: every thread, so grpc.aio's poller counts too)::

    make serve   # in another shell, or any tfsgate serve
    .venv/bin/python -m bench.upstream_calls --home tfsgate_home --calls 4000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import numpy as np

from gateway.triton_grpc import GrpcTriton
from gateway.triton_http import HttpTriton
from tfsgate.core.naming import shared_model_name, tensor_prefix
from tfsgate.core.signatures import DEFAULT_SIGNATURE

X = np.array([[1.0], [2.0], [5.0]], dtype=np.float32)


async def measure(
    endpoint: GrpcTriton | HttpTriton, model: str, prefix: str, calls: int, inflight: int
) -> str:
    """``prefix``: of the signature's tensor names in Triton model ``model`` (as the gateway
    sends them: tfsgate/core/naming.py)."""
    x, y = prefix + "x", prefix + "y"
    answer = await endpoint.infer(model, 1, {x: X}, [y], None)
    np.testing.assert_allclose(answer[y], X * 0.5 + 2)  # checked once, outside the timing

    async def worker(count: int) -> None:
        for _ in range(count):
            await endpoint.infer(model, 1, {x: X}, [y], None)

    await worker(20)  # connections open, first calls made
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(calls // inflight) for _ in range(inflight)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    done = calls // inflight * inflight
    return (
        f"{type(endpoint).__name__:11s} {inflight:3d} in flight: {cpu / done * 1e6:6.0f} us CPU"
        f" per call, {done / wall:7.0f} calls/s"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", default="tfsgate_home", help="the serving tfsgate's --home")
    # The auto runner's ONNX Runtime: half_plus_two's shared Triton model, tensors prefixed. For
    # a signature in a Triton model of its own (--runner=tensorflow): --model
    # half_plus_two__serving_default --prefix ''.
    parser.add_argument("--model", default=shared_model_name("half_plus_two"))
    parser.add_argument("--prefix", default=tensor_prefix(DEFAULT_SIGNATURE))
    parser.add_argument("--calls", type=int, default=4000)
    args = parser.parse_args()
    endpoints = json.loads((Path(args.home) / "triton" / "endpoints.json").read_text())
    for inflight in (1, 16):
        for endpoint in (HttpTriton(endpoints["http_url"]), GrpcTriton(endpoints["grpc_url"])):
            try:
                line = await measure(endpoint, args.model, args.prefix, args.calls, inflight)
                print(line, flush=True)
            finally:
                await endpoint.close()


if __name__ == "__main__":
    asyncio.run(main())
