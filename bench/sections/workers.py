"""``tfsgate gateway --gateway_workers`` 1 against 2, beside the main serve."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench import loadgen
from bench.bodies import PREDICT_PATH, Case, write_bodies
from bench.measure import HALF_PLUS_TWO_X, Bench
from bench.procs import (
    children,
    free_port,
    memory_mb,
    shown,
    spawn,
    stop,
    tree_cpu_seconds,
    wait_http,
)


def run(bench: Bench) -> None:
    """``tfsgate gateway --gateway_workers`` 1 vs 2 beside the main serve (its catalog, its
    Triton through the routing feed), half_plus_two; CPU of the gateway's process tree."""
    assert bench.serve is not None
    case = Case.of("half_plus_two", 2, "x", "y", HALF_PLUS_TWO_X)
    bodies = write_bodies(case, bench.bodies_dir)
    script = loadgen.write_wrk_script(bodies.rest, bodies.rest.with_suffix(".lua"))
    log_file = bench.work / "h2load.log"
    seconds = bench.plan.seconds
    rows: list[dict[str, Any]] = []
    memory: list[dict[str, Any]] = []
    for count in (1, 2):
        with gateway(bench, count) as (process, rest_port, grpc_port):
            rest_url = f"http://127.0.0.1:{rest_port}/v1/models/half_plus_two:predict"
            grpc_url = f"http://127.0.0.1:{grpc_port}{PREDICT_PATH}"
            for kind in ("rest", "grpc"):
                for clients in (16, 64):
                    url, body = (rest_url, script) if kind == "rest" else (grpc_url, bodies.predict)
                    _load(kind, url, body, clients, bench.plan.warmup, log_file)
                    used = tree_cpu_seconds(process.pid)
                    result = _load(kind, url, body, clients, seconds, log_file)
                    used = tree_cpu_seconds(process.pid) - used
                    row: dict[str, Any] = {"workers": count, "kind": kind, "clients": clients}
                    row.update(result.as_dict())
                    row["gateway_cpu_us"] = used / max(1, result.requests) * 1e6
                    rows.append(row)
                    bench.say(
                        f"gateway x{count} {kind:4} {clients:2} clients: {result.rps:6.0f}"
                        f" req/s, p99 {result.p99_ms:.2f} ms,"
                        f" {row['gateway_cpu_us']:.0f} us/req, errors {result.errors}"
                    )
            memory.append({"workers": count, **_worker_memory(process.pid)})
            bench.say(f"gateway x{count} memory: {memory[-1]}")
    bench.results["workers"] = rows
    bench.results["gateway_role_memory"] = memory


def _worker_memory(pid: int) -> dict[str, Any]:
    """RSS and peak RSS (MB) of each process serving requests, after its runs: the workers, or
    the gateway itself when it has none; the supervisor's own figures beside them."""
    workers = children(pid)
    own = memory_mb(pid)
    if not workers:
        return {"serving": [own], "supervisor": None}
    return {"serving": [memory_mb(w) for w in workers], "supervisor": own}


@contextlib.contextmanager
def gateway(bench: Bench, count: int) -> Iterator[tuple[subprocess.Popen[bytes], int, int]]:
    """``tfsgate gateway --gateway_workers=count`` beside the main serve (its catalog, its Triton
    through the routing feed), once every worker answers: (process, REST port, gRPC port)."""
    assert bench.serve is not None
    grpc_port, rest_port = free_port(), free_port()
    catalog = f"sqlite:///{bench.serve.home / 'catalog.db'}"
    command = [sys.executable, "-m", "tfsgate.cli", "gateway", "--host=127.0.0.1"]
    command += [f"--port={grpc_port}", f"--rest_api_port={rest_port}"]
    command += [f"--home={bench.work / 'gateway-home'}", f"--database_url={catalog}"]
    command += [f"--gateway_workers={count}"]
    with open(bench.work / "gateway.log", "ab") as out:
        process = spawn(command, out)
    bench.results["commands"].setdefault(f"gateway, {count} workers", shown(command))
    try:
        _wait_workers(f"http://127.0.0.1:{rest_port}/v1/models/half_plus_two:predict", count)
        yield process, rest_port, grpc_port
    finally:
        stop(process)


def _load(
    kind: str, url: str, body: Path, clients: int, seconds: float, log_file: Path
) -> loadgen.LoadResult:
    """wrk (``body``: its Lua script) or h2load (``body``: the framed request)."""
    if kind == "rest":
        return loadgen.run_wrk(url, body, clients, seconds)
    return loadgen.run_h2load(url, body, clients, seconds, log_file)


def _wait_workers(url: str, count: int, timeout: float = 120) -> None:
    """Until ``count`` gateway processes answer (request ids carry a per-process prefix; each new
    connection goes to one of them), so no worker is still starting while measured."""
    body = {"instances": HALF_PLUS_TWO_X.tolist()}
    wait_http(url, method="POST", body=body)
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(seen)} of {count} gateway workers answered at {url}")
        with contextlib.suppress(httpx.HTTPError):
            answer = httpx.post(url, json=body, timeout=5)
            if answer.status_code == 200:
                seen.add(answer.headers.get("x-request-id", "").split("-")[0])
        time.sleep(0.05)
