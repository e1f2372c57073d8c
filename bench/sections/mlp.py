"""The 3 x 1024 MLP: tfsgate against Triton direct, a naive server and Triton without dynamic
batching."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.bodies import Bodies, Case, write_bodies
from bench.measure import Bench
from bench.procs import (
    free_port,
    shown,
    spawn,
    stop,
    wait_http,
)
from bench.sections import workers


def run(bench: Bench, model_path: Path) -> None:
    plan = bench.plan
    rng = np.random.default_rng(0)
    # The main serve's auto runner: ONNX Runtime, in the model's shared Triton model.
    case = Case.of("mlp", 1, "x", "output_0", rng.random((1, 1024), np.float32))
    bodies = write_bodies(case, bench.bodies_dir)
    bench.check_grpc(bodies, None)
    section: dict[str, Any] = {"clients": plan.mlp_clients}
    for kind in ("rest", "grpc"):
        section[kind] = bench.pair(case, bodies, kind, plan.mlp_clients, plan.mlp_seconds)
    section["naive"] = _naive(bench, model_path / "1", bodies)
    # The gateway's own cores: one event loop saturates near 1 / (its CPU per request), so on a
    # host with cores to spare TF Serving's users would run a gateway worker per core.
    with workers.gateway(bench, 2) as (process, rest_port, _):
        url = f"http://127.0.0.1:{rest_port}/v1/models/mlp:predict"
        section["rest_two_workers"] = bench.measure(
            "rest", "gateway x2", url, bodies.rest, plan.mlp_clients, plan.mlp_seconds, process.pid
        )
    with _batching_off(bench, case.triton_model):
        section["batching_off"] = {
            kind: bench.pair(case, bodies, kind, plan.mlp_clients, plan.mlp_seconds)
            for kind in ("rest", "grpc")
        }
    bench.results["mlp"] = section


def _naive(bench: Bench, version_dir: Path, bodies: Bodies) -> dict[str, Any]:
    port = free_port()
    log = bench.work / "naive.log"
    command = [sys.executable, "-m", "bench.naive_server", "--model_name=mlp"]
    command += [f"--model_path={version_dir}", f"--port={port}"]
    with open(log, "wb") as out:
        process = spawn(command, out)
    bench.results["commands"]["naive server"] = shown(command)
    url = f"http://127.0.0.1:{port}/v1/models/mlp:predict"
    try:
        wait_http(url, method="POST", body=json.loads(bodies.rest.read_text()))
        point = bench.measure(
            "rest",
            "naive",
            url,
            bodies.rest,
            bench.plan.mlp_clients,
            bench.plan.mlp_seconds,
            server_pid=process.pid,
        )
    finally:
        stop(process)
    return point


@contextlib.contextmanager
def _batching_off(bench: Bench, triton_model: str) -> Iterator[None]:
    """Reload the Triton model with its own config minus ``dynamic_batching``, then restore.

    ``triton_model``: the one serving the signature (``Case.triton_model``; the model's shared
    Triton model when ONNX Runtime serves it, which holds every such batched signature of the
    model). A config override through Triton's repository API: the same name and version keep
    serving, tfsgate's routing does not change.
    """
    assert bench.serve is not None
    serve = bench.serve
    http = serve.endpoints["http_url"]
    original = httpx.get(f"{http}/v2/models/{triton_model}/config", timeout=30).json()
    plain = {k: v for k, v in original.items() if k != "dynamic_batching"}

    def load(config: dict[str, Any]) -> None:
        http = serve.endpoints["http_url"]  # a Triton restarted meanwhile has new ports
        reply = httpx.post(
            f"{http}/v2/repository/models/{triton_model}/load",
            json={"parameters": {"config": json.dumps(config)}},
            timeout=300,
        )
        reply.raise_for_status()
        wait_http(f"{http}/v2/models/{triton_model}/ready")

    def put_back() -> None:  # a restarted Triton loads the model with its own config
        load(plain)

    load(plain)
    bench.say(f"{triton_model}: dynamic batching off")
    bench.on_triton_restart.append(put_back)
    try:
        yield
    finally:
        bench.on_triton_restart.remove(put_back)
        load(original)
        bench.say(f"{triton_model}: dynamic batching back on")
