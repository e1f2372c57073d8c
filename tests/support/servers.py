"""Start and stop real ``tfsgate serve`` processes for tests."""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tfsgate.core.ports import free_port


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    home: Path
    grpc_port: int
    rest_port: int
    log_path: Path
    tls: ssl.SSLContext | None = None  # the client side of --ssl_config_file

    @property
    def rest_url(self) -> str:
        if self.tls is not None:
            return f"https://localhost:{self.rest_port}"
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def serve_command(home: Path, args: list[str], grpc_port: int, rest_port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tfsgate.cli",
        "serve",
        f"--port={grpc_port}",
        f"--rest_api_port={rest_port}",
        "--admin_port=0",
        f"--home={home}",
        f"--model_repository={home / 'model_repository'}",
        "--host=127.0.0.1",
        *args,
    ]


def wait_until_serving(server: ServerProcess, model: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"tfsgate serve exited early:\n{server.log()[-4000:]}")
        with contextlib.suppress(httpx.HTTPError):
            url = f"{server.rest_url}/v1/models/{model}"
            verify: ssl.SSLContext | bool = server.tls or True
            if httpx.get(url, timeout=2, verify=verify).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(
        f"tfsgate serve not serving {model} after {timeout}s:\n{server.log()[-4000:]}"
    )


def stop_server(server: ServerProcess, timeout: float = 30.0) -> int:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    return server.process.returncode


@contextlib.contextmanager
def start_server(
    home: Path,
    args: list[str],
    model: str | None = None,
    env: dict[str, str] | None = None,
    tls: ssl.SSLContext | None = None,
) -> Iterator[ServerProcess]:
    grpc_port, rest_port = free_port(), free_port()
    log_path = home / "serve.log"
    home.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            serve_command(home, args, grpc_port, rest_port),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    server = ServerProcess(process, home, grpc_port, rest_port, log_path, tls)
    try:
        name = model or next(
            (a.split("=", 1)[1] for a in args if a.startswith("--model_name=")), "default"
        )
        wait_until_serving(server, name)
        yield server
    finally:
        stop_server(server)
