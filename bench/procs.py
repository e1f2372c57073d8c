"""Processes the benchmark starts and reads: ``tfsgate serve``, CPU and memory from ``/proc``,
Prometheus counters."""

from __future__ import annotations

import contextlib
import os
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from tfsgate.core.ports import free_port
from tfsgate.core.spawning import dying_with_parent

ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- /proc -------------------------------------------------------------------------------------
def cpu_split(pid: int) -> tuple[float, float]:
    """(utime, stime) of one process (all its threads): user space (Python and its C
    extensions) and the kernel (system calls: socket reads and writes, epoll), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads), in seconds."""
    return sum(cpu_split(pid))


def children(pid: int) -> list[int]:
    """The live children of a process (a gateway's workers)."""
    with contextlib.suppress(OSError):
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


def tree_cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its live children (a gateway and its workers)."""
    total = cpu_seconds(pid)
    for child in children(pid):
        with contextlib.suppress(OSError):
            total += cpu_seconds(child)
    return total


def _group_stats(pgid: int) -> Iterator[tuple[int, list[str]]]:
    """(pid, /proc/PID/stat's fields after the name) of every live process in a process group."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                yield int(entry.name), fields


def group_cpu_seconds(pgid: int) -> float:
    """utime + stime of every live process in a process group (Triton and its stubs)."""
    return sum((int(f[11]) + int(f[12])) / CLK_TCK for _, f in _group_stats(pgid))


def group_pids(pgid: int) -> list[int]:
    """The live processes of a process group (Triton and its stubs)."""
    return [pid for pid, _ in _group_stats(pgid)]


def pin(pids: list[int], cpus: set[int]) -> None:
    """Every thread of ``pids`` onto ``cpus`` (a thread or process gone meanwhile is skipped)."""
    for pid in pids:
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(task.name), cpus)


def machine_busy_seconds() -> float:
    """CPU time all cores spent busy since boot (/proc/stat: everything but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK


def children_cpu_seconds() -> float:
    """utime+stime of this process and its waited-for children (the load generators)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def alive(pid: int) -> bool:
    """The process exists and has not exited (a zombie not yet reaped by its parent has)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def memory_mb(pid: int) -> dict[str, float]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return {"rss_mb": values["VmRSS"], "peak_rss_mb": values["VmHWM"]}


def prometheus_sum(text: str, name: str, where: Callable[[dict[str, str]], bool]) -> float:
    """Sum a Prometheus text-format series over the label sets ``where`` accepts."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        labels: dict[str, str] = {}
        if "{" in head:
            series, _, body = head.partition("{")
            for part in body.rstrip("}").split('",'):
                key, _, val = part.partition("=")
                labels[key.strip(",")] = val.strip('"')
        else:
            series = head
        if series == name and where(labels):
            total += float(value)
    return total


def shown(command: list[str]) -> str:
    """A command as a shell line, paths relative to the checkout."""
    return shlex.join(command).replace(f"{ROOT}/", "")


# -- processes -----------------------------------------------------------------------------------
@dataclass
class Serve:
    process: subprocess.Popen[bytes]
    home: Path
    grpc_port: int
    rest_port: int
    admin_port: int
    log: Path
    endpoints: dict[str, str] = field(default_factory=dict)

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def triton_pgid(self) -> int:
        return int(self.endpoints["pid"])


def spawn_serve(
    home: Path,
    args: list[str],
    admin: bool,
    tree: Path = ROOT,
    python: str = sys.executable,
    wrapper: Sequence[str] = (),
) -> Serve:
    """``tfsgate serve`` from the checkout ``tree`` run by ``python`` (another tree or interpreter
    for an A/B: ``bench/ab.py``), under ``wrapper`` when given (valgrind:
    ``bench/instructions.py``)."""
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    grpc_port, rest_port = free_port(), free_port()
    admin_port = free_port() if admin else 0
    command = [
        *wrapper,
        python,
        "-m",
        "tfsgate.cli",
        "serve",
        f"--port={grpc_port}",
        f"--rest_api_port={rest_port}",
        f"--admin_port={admin_port}",
        f"--home={home}",
        f"--model_repository={home / 'model_repository'}",
        "--host=127.0.0.1",
        *args,
    ]
    log = home / "serve.log"
    with open(log, "wb") as out:
        process = spawn(command, out, tree)
    return Serve(process, home, grpc_port, rest_port, admin_port, log)


def spawn(command: list[str], out: IO[bytes], tree: Path = ROOT) -> subprocess.Popen[bytes]:
    """``command`` run in ``tree``: ``python -m`` puts the working directory first on the child's
    path, so a module comes from that checkout. SIGTERM when the benchmark dies (killed, or a
    Ctrl-C that reached only it), so no ``tfsgate serve`` and its Triton outlive a broken run."""
    return subprocess.Popen(
        dying_with_parent(command, "TERM"), stdout=out, stderr=subprocess.STDOUT, cwd=tree
    )


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_predict(serve: Serve, body: dict[str, Any], timeout: float = 300) -> float:
    """Poll REST :predict until it answers 200; returns the monotonic time it did."""
    deadline = time.monotonic() + timeout
    url = f"{serve.rest_url}/v1/models/half_plus_two:predict"
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            if serve.process.poll() is not None:
                raise RuntimeError(f"tfsgate serve exited:\n{serve.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if client.post(url, json=body).status_code == 200:
                    return time.monotonic()
            time.sleep(0.02)
    raise RuntimeError(f"no prediction after {timeout}s:\n{serve.log.read_text()[-3000:]}")


def wait_port(port: int, timeout: float = 60) -> None:
    """Until something accepts TCP connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port} after {timeout}s")


def wait_http(url: str, timeout: float = 120, method: str = "GET", body: Any = None) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if client.request(method, url, json=body).status_code == 200:
                    return
            time.sleep(0.1)
    raise RuntimeError(f"{url} not answering after {timeout}s")
