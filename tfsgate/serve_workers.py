"""``tfsgate serve --gateway_workers N``: the front doors in N processes beside the control plane.

With N > 1 the serving process keeps the control plane (catalog, Triton, reconciler, admin API) and
starts N ``tfsgate gateway`` processes on its gRPC and REST ports with ``--reuse_port``, as
``tfsgate gateway --gateway_workers`` does (tfsgate/gateway_workers.py): the kernel spreads the
connections over them, each follows this server's routing feed with its own routing table and sends
its inferences to the Triton the control plane publishes, so a host's cores can all serve.

- ``HandleReloadConfigRequest``: TF Serving answers it in the server a client talks to. Here any
  worker may take the connection, so each forwards the call (:class:`ForwardingReloader`) to the
  serving process's own gRPC door, which listens only on a private Unix socket (a directory of
  mode 0700) and reconciles as a single-process serve does.
- Metrics: the workers share a Prometheus multiprocess directory, so the metrics page sums them
  all whichever answers the scrape (gateway/metrics.py); the control plane's stay on the admin
  port.
- ``--grpc_socket_path`` goes to the first worker alone (a Unix socket has one listener).
- A worker that exits while the server runs is started again, after 1 s, doubling up to 30 s
  while it keeps failing within a minute of its start (tfsgate/worker_restarts.py, as the gateway
  role's supervisor does); its requests in flight fail, the other workers' do not. SIGTERM or SIGINT to the server drains and
  stops the workers first; a server killed outright takes them with it (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
from prometheus_client import multiprocess

from tfsgate.cli import GATEWAY_FLAGS
from tfsgate.core import protos
from tfsgate.core.pauses import pause
from tfsgate.core.status import Code, ServingError
from tfsgate.settings import ServeSettings
from tfsgate.startup import StartupError
from tfsgate.worker_restarts import RestartDelay

log = logging.getLogger("tfsgate")

# The gateway role's flags a worker takes as serve was given them (the front doors', batching's,
# where Triton is); these are set per worker in ``worker_args``.
_SET_PER_WORKER = frozenset(
    (
        "grpc_socket_path",
        "database_url",
        "gateway_workers",
        "reuse_port",
        "control_plane_socket",
        "home",
        "version",
    )
)
PASSED_FLAGS = tuple(n for n in GATEWAY_FLAGS if n not in _SET_PER_WORKER)
STOP_GRACE_S = 30.0  # each worker's drain bound after SIGTERM; then SIGKILL
_PR_SET_PDEATHSIG = 1
SERVE_PID_ENV = "TFSGATE_SERVE_PID"  # set for its workers by the serving process


def check_workers(s: ServeSettings) -> None:
    """Workers share the TCP ports; a Unix socket has one listener, so gRPC on a socket alone
    (``--port=0``) would leave every worker but the first without a gRPC door, which a gateway
    refuses."""
    if s.gateway_workers > 1 and not s.port:
        raise StartupError(
            "--gateway_workers above 1 needs --port: the workers share the gRPC and REST ports,"
            " and --grpc_socket_path takes one listener"
        )


def _flag(name: str, value: Any) -> str:
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"--{name}={value}"


def worker_args(s: ServeSettings, index: int, socket_path: Path) -> list[str]:
    """``tfsgate gateway``'s flags for worker ``index`` of a serve with settings ``s``. Every flag
    the worker must not take from the environment (``TFSGATE_*``, inherited) is written out."""
    args = [_flag(n, getattr(s, n)) for n in PASSED_FLAGS if n in s.model_fields_set]
    args += [
        f"--home={s.home_path}",
        f"--database_url={s.catalog_url}",
        f"--grpc_socket_path={s.grpc_socket_path if index == 0 else ''}",
        f"--control_plane_socket={socket_path}",
        "--gateway_workers=1",
        "--reuse_port",
    ]
    return args


def die_with_serve() -> None:
    """In a worker: SIGTERM when the serving process ends (PR_SET_PDEATHSIG). Set here rather
    than between fork and exec: a pre-exec hook makes the spawn a full fork, which runs gRPC's
    fork handlers in a process with gRPC's threads running (and logs that it skips them)."""
    expected = os.environ.get(SERVE_PID_ENV)
    if not expected:
        return
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(expected):  # the server ended before the line above
        os.kill(os.getpid(), signal.SIGTERM)


async def _exited(process: subprocess.Popen[bytes]) -> int:
    """``process``'s exit status, awaited on a pidfd (no thread, no polling)."""
    loop = asyncio.get_running_loop()
    fd = os.pidfd_open(process.pid)
    ended: asyncio.Future[None] = loop.create_future()

    def readable() -> None:  # called on every turn until the reader is removed
        if not ended.done():
            ended.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await ended
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return process.wait()


class GatewayWorkers:
    """Starts, keeps and stops a serve's gateway worker processes."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.count = settings.gateway_workers
        self.directory = Path(tempfile.mkdtemp(prefix="tfsgate-serve-"))  # mode 0700
        self.socket_path = self.directory / "control.sock"
        self.metrics_dir = self.directory / "metrics"
        self.metrics_dir.mkdir()
        self.processes: list[subprocess.Popen[bytes]] = []
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def door_settings(self) -> ServeSettings:
        """The serving process's own front doors: gRPC on the private socket only."""
        return self.settings.model_copy(
            update={"port": 0, "rest_api_port": 0, "grpc_socket_path": str(self.socket_path)}
        )

    async def start(self) -> None:
        for index in range(self.count):
            self.processes.append(self._spawn(index))
            self._tasks.append(asyncio.ensure_future(self._keep(index)))
        s = self.settings
        log.info(
            "gateway workers: %d processes on gRPC %s:%s and REST %s:%s (pids %s)",
            self.count,
            s.host,
            s.port,
            s.host,
            s.rest_api_port,
            ", ".join(str(p.pid) for p in self.processes),
        )

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        """On the event loop's thread, which lives as long as the server (the parent-death
        signal follows the thread that started the child)."""
        env = {
            **os.environ,
            "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir),
            SERVE_PID_ENV: str(os.getpid()),
        }
        args = worker_args(self.settings, index, self.socket_path)
        # Its own session: a terminal's Ctrl-C reaches the server, which drains and stops the
        # workers, rather than every worker at once.
        return subprocess.Popen(
            [sys.executable, "-m", "tfsgate.cli", "gateway", *args],
            env=env,
            start_new_session=True,
        )

    async def _keep(self, index: int) -> None:
        delays = RestartDelay()
        while True:
            process = self.processes[index]
            started = time.monotonic()
            status = await _exited(process)
            multiprocess.mark_process_dead(process.pid, str(self.metrics_dir))
            if self._stopping.is_set():
                return
            delay = delays.exited(index, process.pid, status, time.monotonic() - started)
            if await pause(self._stopping, delay):
                return
            process = self.processes[index] = self._spawn(index)
            log.info("gateway worker %d started again (pid %d)", index, process.pid)

    async def stop(self) -> None:
        """SIGTERM (each drains its requests), SIGKILL after STOP_GRACE_S."""
        self._stopping.set()
        self._signal(signal.SIGTERM)
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=STOP_GRACE_S)
            if pending:
                self._signal(signal.SIGKILL)
                await asyncio.wait(pending)
        shutil.rmtree(self.directory, ignore_errors=True)

    def _signal(self, signum: int) -> None:
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signum)


class ForwardingReloader:
    """A worker's ``HandleReloadConfigRequest``: the serving process's answer, status and all."""

    def __init__(self, socket_path: str) -> None:
        self.target = f"unix:{socket_path}"
        self._channel: grpc.aio.Channel | None = None

    async def reload_config(self, config: Any) -> None:
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self.target)
        stub = protos.model_service_pb2_grpc.ModelServiceStub(self._channel)
        request = protos.model_management_pb2.ReloadConfigRequest(config=config)
        try:
            await stub.HandleReloadConfigRequest(request)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            raise ServingError(Code(code.value[0]), exc.details() or "") from None

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
