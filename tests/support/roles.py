"""The production roles as real processes: ``tfsgate gateway`` and ``tfsgate control-plane``,
plus a standalone tritonserver standing in for Triton's own host or container."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.metrics import FLUSH_SECONDS, METRICS_PATH
from tests.support.metrics_pages import predict_requests, scrape
from tests.support.servers import free_port


@dataclass
class RoleProcess:
    role: str
    process: subprocess.Popen[bytes]
    log_path: Path
    grpc_port: int = 0
    rest_port: int = 0
    admin_port: int = 0
    args: list[str] = field(default_factory=list)

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}/v1/admin"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process.poll() is None


def role_command(role: str, args: list[str]) -> list[str]:
    return [sys.executable, "-m", "tfsgate.cli", role, "--host=127.0.0.1", *args]


def launch(role: str, home: Path, args: list[str], name: str | None = None) -> RoleProcess:
    """Start ``tfsgate <role>`` with fresh ports (gateway: gRPC and REST; control plane and
    serve: admin; serve: all three); returns at once."""
    home.mkdir(parents=True, exist_ok=True)
    grpc_port = rest_port = admin_port = 0
    extra = [f"--home={home}"]
    if role in ("gateway", "serve"):
        grpc_port, rest_port = free_port(), free_port()
        extra += [f"--port={grpc_port}", f"--rest_api_port={rest_port}"]
    if role in ("control-plane", "serve"):
        admin_port = free_port()
        extra += [f"--admin_port={admin_port}"]
    log_path = home / f"{name or role}.log"
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            role_command(role, [*extra, *args]),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
    return RoleProcess(role, process, log_path, grpc_port, rest_port, admin_port, args)


def stop(role: RoleProcess, timeout: float = 30.0) -> int:
    if role.process.poll() is None:
        role.process.send_signal(signal.SIGTERM)
        try:
            role.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            role.process.kill()
            role.process.wait()
    return role.process.returncode


@contextlib.contextmanager
def running(
    role: str, home: Path, args: list[str], name: str | None = None
) -> Iterator[RoleProcess]:
    process = launch(role, home, args, name)
    try:
        yield process
    finally:
        stop(process)


def wait_for(role: RoleProcess, predicate: object, what: str, timeout: float = 180.0) -> None:
    """Until ``predicate()`` is truthy; fails with the role's log when it exits or times out."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not role.alive():
            raise AssertionError(
                f"{role.role} exited ({role.process.returncode}):\n{role.log()[-4000:]}"
            )
        with contextlib.suppress(httpx.HTTPError, grpc.RpcError):
            if predicate():
                return
        time.sleep(0.05)
    raise AssertionError(f"{role.role}: {what} not within {timeout}s:\n{role.log()[-4000:]}")


def predict_status(gateway: RoleProcess, path: str = "half_plus_two", x: float = 1.0) -> int:
    url = f"{gateway.rest_url}/v1/models/{path}:predict"
    return httpx.post(url, json={"instances": [x]}, timeout=10).status_code


def admin_answers(control: RoleProcess) -> bool:
    return httpx.get(f"{control.admin_url}/models", timeout=2).status_code == 200


def health_status(target: str, service: str = "") -> str:
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


def answering_workers(role: RoleProcess, connections: int = 30) -> set[str]:
    """The processes answering ``connections`` new connections to half_plus_two (the kernel
    picks a worker per connection; a request ID starts with its process's prefix)."""
    prefixes = set()
    for _ in range(connections):
        answer = httpx.post(
            f"{role.rest_url}/v1/models/half_plus_two:predict",
            json={"instances": [1.0, 2.0]},
            timeout=10,
        )
        assert answer.json() == {"predictions": [2.5, 3.0]}
        prefixes.add(answer.headers["x-request-id"].split("-")[0])
    return prefixes


def assert_workers_share_the_ports(role: RoleProcess, workers: int, connections: int = 30) -> None:
    """New connections reach every worker, health is SERVING, and a scrape shows every worker's
    requests whichever answers it (each worker's tallies reach its file within a second)."""
    assert len(answering_workers(role, connections)) == workers, "a worker answered nothing"
    assert health_status(role.grpc_target) == "SERVING"
    wait_for(
        role,
        lambda: predict_requests(scrape(f"{role.rest_url}{METRICS_PATH}").text) >= connections,
        "every worker's requests on the summed page",
        timeout=3 * FLUSH_SECONDS,
    )
