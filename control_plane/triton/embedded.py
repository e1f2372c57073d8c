"""The embedded ``tritonserver``: the binary shipped in the nvidia-pytriton wheel, run as a child.

Loopback only, free ports, explicit model control. Facts this module relies on:
- the python backend directory Triton is given must hold ``libtriton_python.so``, its utils
  module and the ``triton_python_backend_stub`` built for our Python version (the wheel
  keeps stubs apart under ``python_backend_stubs/3.X``), so we assemble one from symlinks;
- the stub's embedded interpreter takes its packages from the first ``python3`` on ``PATH``
  (PYTHONPATH is ignored), so our venv's ``bin/`` goes first;
- the stub links ``libpython3.X.so.1.0`` and finds it only where the dynamic linker looks: a
  Python installed elsewhere (pyenv, conda, a source build) left every model load waiting on a
  stub that never started (Triton logs "error while loading shared libraries"), so our
  interpreter's library is linked beside the stub and that directory goes first on
  ``LD_LIBRARY_PATH`` (only it: a conda ``lib/`` also holds a libstdc++ Triton must not take);
- Triton starts one stub process per model instance; they are its children, so Triton runs in its
  own process group and stopping it signals the whole group (no orphaned stubs).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tfsgate.core.ports import free_port
from tfsgate.core.spawning import dying_with_parent

log = logging.getLogger(__name__)


class TritonStartError(RuntimeError):
    """Triton exited or never became ready."""


def pytriton_root() -> Path:
    """The wheel's ``pytriton/tritonserver`` directory, found without importing pytriton."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise TritonStartError("nvidia-pytriton is not installed: no embedded tritonserver")
    return Path(next(iter(spec.submodule_search_locations))) / "tritonserver"


def libpython() -> Path | None:
    """Our interpreter's shared library as the stub links it (``libpython3.X.so.1.0``); None for
    a Python built without one (its stub cannot run: Triton's log says so)."""
    name, directory = sysconfig.get_config_var("INSTSONAME"), sysconfig.get_config_var("LIBDIR")
    if not name or ".so" not in name or not directory:
        return None  # a static build: "libpython3.X.a"
    path = Path(directory) / name
    return path if path.exists() else None


def stub_library_dir(backends: Path) -> Path:
    """Where our libpython is linked for the stub (``prepare_backend_dir``)."""
    return backends / "python" / "lib"


def stub_path(backends: Path) -> Path:
    """The stub ``prepare_backend_dir`` links for our Python."""
    return backends / "python" / "triton_python_backend_stub"


def prepare_backend_dir(target: Path) -> Path:
    """Assemble ``target/python`` from the wheel's backend library and our Python's stub, and
    ``target/python/lib`` with our Python's shared library for the stub to load."""
    root = pytriton_root()
    python_dir = target / "python"
    python_dir.mkdir(parents=True, exist_ok=True)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    sources = {
        "libtriton_python.so": root / "backends" / "python" / "libtriton_python.so",
        "triton_python_backend_utils.py": root / "backends/python/triton_python_backend_utils.py",
        "triton_python_backend_stub": root
        / "python_backend_stubs"
        / version
        / "triton_python_backend_stub",
    }
    for name, source in sources.items():
        if not source.exists():
            raise TritonStartError(f"the Triton wheel lacks {source}")
        _link(python_dir / name, source)
    library = libpython()
    if library is not None:
        stub_library_dir(target).mkdir(exist_ok=True)
        _link(stub_library_dir(target) / library.name, library)
    return target


def _link(link: Path, source: Path) -> None:
    if link.is_symlink() or link.exists():
        if link.resolve() == source.resolve():
            return
        link.unlink()
    link.symlink_to(source)


@dataclass(frozen=True)
class TritonEndpoints:
    grpc_url: str  # host:port, as tritonclient.grpc wants it
    http_url: str
    metrics_url: str


class EmbeddedTriton:
    """Starts, watches and stops one tritonserver child process."""

    def __init__(
        self,
        model_repository: Path,
        home: Path,
        log_verbose: int = 0,
        cache_bytes: int = 0,
        ports: tuple[int, int, int] | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        """``ports`` (gRPC, HTTP, metrics): fixed, kept across restarts (a Triton standing in for
        another host); default fresh ones at each start. ``extra_args`` go to tritonserver."""
        self.model_repository = model_repository.resolve()
        self.home = home.resolve()
        self.log_verbose = log_verbose
        self.cache_bytes = cache_bytes
        self.ports = ports
        self.extra_args = tuple(extra_args)
        self._process: subprocess.Popen[bytes] | None = None
        self.endpoints: TritonEndpoints | None = None

    @property
    def backends(self) -> Path:
        """The backend directory Triton is given (``prepare_backend_dir``)."""
        return self.home / "triton" / "backends"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def exit_status(self) -> str:
        """How the last Triton ended, for the log: its exit code or the signal that killed it
        (Popen's negative returncode), e.g. "signal 11 (SIGSEGV)"."""
        if self._process is None:
            return "not started"
        code = self._process.poll()
        if code is None:
            return "running"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"signal {-code} ({signal.Signals(-code).name})"
            return f"signal {-code}"
        return f"exit code {code}"

    def _command(self, grpc_port: int, http_port: int, metrics_port: int) -> list[str]:
        backends = prepare_backend_dir(self.backends)
        return [
            str(pytriton_root() / "bin" / "tritonserver"),
            f"--model-repository={self.model_repository}",
            f"--backend-directory={backends}",
            "--model-control-mode=explicit",
            "--disable-auto-complete-config",
            "--strict-readiness=true",
            "--exit-on-error=false",
            "--http-address=127.0.0.1",
            f"--http-port={http_port}",
            "--grpc-address=127.0.0.1",
            f"--grpc-port={grpc_port}",
            "--metrics-address=127.0.0.1",
            f"--metrics-port={metrics_port}",
            "--allow-metrics=true",
            "--exit-timeout-secs=10",
            f"--log-verbose={self.log_verbose}",
            *self._cache_arguments(),
            *self.extra_args,
        ]

    def _cache_arguments(self) -> list[str]:
        """Triton's local response cache (models opt in with ``response_cache``). The wheel keeps
        ``libtritoncache_local.so`` under its own ``caches``; Triton looks in
        /opt/tritonserver/caches unless told."""
        if self.cache_bytes <= 0:
            return []
        return [
            f"--cache-config=local,size={self.cache_bytes}",
            f"--cache-directory={pytriton_root() / 'caches'}",
        ]

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        venv_bin = str(Path(sys.executable).parent)
        env["PATH"] = os.pathsep.join([venv_bin, env.get("PATH", "")])
        libraries = stub_library_dir(self.backends)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            [str(libraries), *filter(None, [env.get("LD_LIBRARY_PATH")])]
        )
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        return env

    def start(self) -> TritonEndpoints:
        """Spawn tritonserver on fresh loopback ports; returns at once (see ``wait_ready``)."""
        self.model_repository.mkdir(parents=True, exist_ok=True)
        logs = self.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        grpc_port, http_port, metrics_port = self.ports or (free_port(), free_port(), free_port())
        with open(logs / "triton.log", "ab") as log_file:
            # Its own process group; SIGKILL when tfsgate dies (tfsgate/core/spawning.py).
            self._process = subprocess.Popen(
                dying_with_parent(self._command(grpc_port, http_port, metrics_port), "KILL"),
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                process_group=0,
            )
        self.endpoints = TritonEndpoints(
            grpc_url=f"127.0.0.1:{grpc_port}",
            http_url=f"http://127.0.0.1:{http_port}",
            metrics_url=f"http://127.0.0.1:{metrics_port}/metrics",
        )
        # Operators and benchmarks find the loopback ports here (they change on every start).
        (self.home / "triton" / "endpoints.json").write_text(
            json.dumps({"pid": self._process.pid, **asdict(self.endpoints)})
        )
        return self.endpoints

    async def wait_ready(self, timeout: float = 120.0) -> None:
        """Poll Triton's readiness over gRPC until it answers, or fail if the process exits or
        its python backend's stub cannot start (``check_stub``)."""
        import tritonclient.grpc.aio as triton_grpc

        assert self.endpoints is not None, "start() first"
        await asyncio.to_thread(self.check_stub)
        deadline = time.monotonic() + timeout
        client = triton_grpc.InferenceServerClient(self.endpoints.grpc_url)
        try:
            while time.monotonic() < deadline:
                if not self.running():
                    raise TritonStartError(
                        f"tritonserver exited with {self._process and self._process.returncode}; "
                        f"see {self.home / 'logs' / 'triton.log'}"
                    )
                with contextlib.suppress(Exception):
                    if await client.is_server_ready(client_timeout=1.0):
                        # Logged once ready, not at the spawn: a serve's Triton is spawned
                        # before its start-up checks (tfsgate.prewarm), and a failed check's
                        # output is TF Serving's lines alone.
                        port = self.endpoints.grpc_url.rpartition(":")[2]
                        log.info("started tritonserver pid %s (grpc %s)", self.pid, port)
                        return
                await asyncio.sleep(0.1)
        finally:
            await client.close()
        raise TritonStartError(f"tritonserver not ready after {timeout:.0f}s")

    def check_stub(self) -> None:
        """Fail if the python backend's stub cannot start in Triton's environment. Triton is
        ready without it (stubs start with the models), and then waits for ever on a model
        load whose stub exited at once: the load's deadline, minutes later, was all a user saw.
        Run without arguments the stub exits at once: 1 ("Expected 9 arguments") when it loads,
        127 and the dynamic loader's message when it cannot (a Python without a shared
        library)."""
        done = subprocess.run(
            [str(stub_path(self.backends))],
            env=self._environment(),
            capture_output=True,
            timeout=30,
            check=False,
        )
        if done.returncode == 127 and b"error while loading shared libraries" in done.stderr:
            raise TritonStartError(
                "Triton's python backend stub cannot start: "
                + done.stderr.decode(errors="replace").strip()
            )

    async def live(self, timeout: float) -> bool:
        """Triton's ``GET /v2/health/live`` answered 200 within ``timeout`` (live, not ready:
        a Triton loading a large model is live)."""
        if self.endpoints is None:
            return False
        address = self.endpoints.http_url.removeprefix("http://")
        host, _, port = address.rpartition(":")
        request = b"GET /v2/health/live HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
        writer = None
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(host, int(port))
                writer.write(request % address.encode())
                status = await reader.readline()
        except (OSError, TimeoutError):
            return False
        finally:
            if writer is not None:
                writer.close()
        return status.split(b" ")[1:2] == [b"200"]

    def kill(self) -> None:
        """SIGKILL Triton and its stubs at once: for one that no longer answers (a hung process
        does not act on SIGTERM: tritonserver 2.51, its heap found corrupted, caught the
        SIGABRT and hung in its handler)."""
        process = self._process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM Triton, wait for it and its stubs, then SIGKILL whatever of the group is left."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            # Only Triton itself: it unloads models and stops its stubs in order.
            process.terminate()
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                log.warning("tritonserver did not stop in %.0fs; killing it", grace)
        # Stubs may outlive Triton by a moment; nothing of the group may survive us.
        self.kill()
        self._process = None
