"""Where the gateway's CPU goes by layer: ``perf``'s CPU-clock samples of every thread of
``tfsgate serve``, split into the interpreter, each C extension, libc and the kernel, and the
kernel's part into socket sends, socket reads and event-loop waits.

Why beside py-spy (bench/pyspy.py): py-spy samples Python stacks in wall-clock time, so a send is
charged while the thread is preempted inside it, and uvloop's C, its socket calls and the kernel
are one "waiting" bucket. perf's ``cpu-clock`` event is a timer that fires only on a CPU running
the process, in user space and in the kernel alike; a software event, it works on VMs that expose
no hardware counters. Its shares times ``/proc``'s CPU per request in the same run give
microseconds per request for each layer, perf's own cost included (``RATE_HZ``).

Measured with it (docs/performance.md, thirty-second pass): at one client the interpreter takes
about three times the microseconds per request it takes at 16 clients for the same Python code,
and a socket send about twice (each wakes a receiver whose CPU had gone idle).

perf needs the kernel's leave to sample the kernel: root, or ``kernel.perf_event_paranoid`` at 1
or lower. Without it, or without ``perf`` (Debian's ``linux-perf``), ``unavailable`` says why.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

# perf's sampling adds to the CPU it measures (its timer, stopped and started on each of the
# process's context switches, and each sample). Alternating runs with and without it, one client:
# about +45 us a request at 999 Hz and +26 at 250 (of 210-300; docs/performance.md, thirty-second
# pass). 250 Hz still gives hundreds of samples per point.
RATE_HZ = 250
# Kernel functions whose time (with all they call: --children) is one part of the kernel's share.
# The send's includes loopback's delivery into the receiver's socket and the receiver's wake-up,
# run in the sender's system call.
KERNEL_PARTS = {
    "socket sends": "tcp_sendmsg",
    "socket reads": "tcp_recvmsg",
    "event-loop waits": "do_epoll_wait",
}
_KERNEL_DSOS = ("[kernel.kallsyms]", "[kernel.vmlinux]", "[kernel]")
_DSO_LINE = re.compile(r"^\s*(?P<share>\d+(?:\.\d+)?)%\s+(?P<dso>\S.*?)\s*$")
_CHILDREN_LINE = re.compile(
    r"^\s*(?P<children>\d+(?:\.\d+)?)%\s+\d+(?:\.\d+)?%\s+\[k\]\s+(?P<symbol>\S+)\s*$"
)


def unavailable() -> str | None:
    """Why perf cannot sample the gateway's kernel time here, or None when it can."""
    if shutil.which("perf") is None:
        return "no `perf` on PATH (Debian's linux-perf)"
    if os.geteuid() != 0:
        try:
            paranoid = int(Path("/proc/sys/kernel/perf_event_paranoid").read_text())
        except (OSError, ValueError):
            return "kernel.perf_event_paranoid unreadable"
        if paranoid > 1:
            return f"kernel.perf_event_paranoid is {paranoid}: kernel samples need root or <= 1"
    return None


def record_command(pid: int, seconds: float, output: Path) -> list[str]:
    return [
        "perf",
        "record",
        "--event=cpu-clock",
        f"--freq={RATE_HZ}",
        "--call-graph=fp",
        f"--pid={pid}",
        f"--output={output}",
        "--quiet",
        "--",
        "sleep",
        f"{seconds:g}",
    ]


def start_record(pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    """Sample ``pid``'s threads for ``seconds`` from now; the caller runs the load meanwhile."""
    output.unlink(missing_ok=True)
    return subprocess.Popen(
        record_command(pid, seconds, output), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def report_commands(data: Path) -> tuple[list[str], list[str]]:
    """``perf report`` by shared object (self time), and by kernel symbol with its callees."""
    common = ["perf", "report", f"--input={data}", "--stdio", "--quiet", "-g", "none"]
    return [*common, "--no-children", "--sort=dso"], [*common, "--children", "--sort=sym"]


# perf names a shared object by its file name alone: the packages of the ones a gateway loads.
_PACKAGES = {
    "loop": "uvloop",
    "parser": "httptools",
    "_multiarray_umath": "numpy",
    "_message": "protobuf (upb)",
    "cygrpc": "grpcio",
    "_asyncio": "asyncio (C)",
}


def short_dso(name: str) -> str:
    """``loop.cpython-311-x86_64-linux-gnu.so`` -> ``uvloop``; libpython is the interpreter, the
    kernel's images the kernel, ``libc.so.6`` libc, other objects their file name's stem."""
    if name in _KERNEL_DSOS:
        return "kernel"
    if name.startswith("libpython"):
        return "interpreter"
    if name.startswith(("libc.so", "libc-")):
        return "libc"
    stem = name.rsplit("/", 1)[-1].split(".", 1)[0]
    return _PACKAGES.get(stem, stem)


def parse_dsos(text: str) -> list[tuple[str, float]]:
    """Shares of all samples by layer (``short_dso``), largest first."""
    shares: dict[str, float] = {}
    for line in text.splitlines():
        match = _DSO_LINE.match(line)
        if match:
            layer = short_dso(match["dso"])
            shares[layer] = shares.get(layer, 0.0) + float(match["share"]) / 100
    return sorted(shares.items(), key=lambda item: -item[1])


def parse_kernel_parts(text: str) -> dict[str, float]:
    """Each of ``KERNEL_PARTS``' shares of all samples (with what it calls)."""
    wanted = {symbol: part for part, symbol in KERNEL_PARTS.items()}
    found = dict.fromkeys(KERNEL_PARTS, 0.0)
    for line in text.splitlines():
        match = _CHILDREN_LINE.match(line)
        if match and match["symbol"] in wanted:
            found[wanted[match["symbol"]]] = float(match["children"]) / 100
    return found


def summarise(data: Path) -> dict[str, Any]:
    """The recording's layers and kernel parts (shares of its samples)."""
    by_dso, by_symbol = report_commands(data)
    dsos = subprocess.run(by_dso, capture_output=True, text=True, timeout=300, check=True)
    symbols = subprocess.run(by_symbol, capture_output=True, text=True, timeout=300, check=True)
    return {
        "layers": parse_dsos(dsos.stdout),
        "kernel_parts": parse_kernel_parts(symbols.stdout),
    }


def layer_us(point: dict[str, Any]) -> dict[str, float]:
    """A recorded point's layers (``summarise``'s shares) in microseconds of its CPU per request,
    largest first."""
    cpu = float(point["cpu_us"])
    return {name: share * cpu for name, share in point["layers"]}


def kernel_part_us(point: dict[str, Any]) -> dict[str, float]:
    """The same for ``KERNEL_PARTS``."""
    cpu = float(point["cpu_us"])
    return {name: share * cpu for name, share in point["kernel_parts"].items()}
