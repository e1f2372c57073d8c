"""bench/cpu_layers.py: perf's reports read into layers, a real recording of a real process, and
the report's table and missed-row sentence built from them."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest

from bench import cpu_layers, report
from tests.bench.test_report import RESULTS

# `perf report --stdio --quiet -g none --no-children --sort=dso`, as perf 6.1 writes it (it pads
# each name to one width: the parser takes either).
DSOS = """\
    55.51%  libpython3.11.so.1.0
    25.39%  [kernel.kallsyms]
     5.66%  _message.abi3.so
     4.22%  loop.cpython-311-x86_64-linux-gnu.so
     3.95%  libc.so.6
     0.20%  [vdso]
"""
# `... --children --sort=sym`: total (with callees), self, then the symbol.
SYMBOLS = """\
    25.13%     0.30%  [k] do_syscall_64
    18.62%    18.62%  [.] _PyEval_EvalFrameDefault
    13.44%     0.03%  [k] tcp_sendmsg
    13.29%     0.17%  [k] tcp_sendmsg_locked
     6.76%     0.17%  [k] do_epoll_wait
     1.61%     0.05%  [k] tcp_recvmsg
"""


def test_shared_objects_are_read_as_layers() -> None:
    layers = dict(cpu_layers.parse_dsos(DSOS))
    assert layers["interpreter"] == pytest.approx(0.5551)
    assert layers["kernel"] == pytest.approx(0.2539)
    assert layers["protobuf (upb)"] == pytest.approx(0.0566)
    assert layers["uvloop"] == pytest.approx(0.0422)
    assert layers["libc"] == pytest.approx(0.0395)
    assert [name for name, _ in cpu_layers.parse_dsos(DSOS)][:2] == ["interpreter", "kernel"]
    assert cpu_layers.parse_dsos("     3.95%  libc.so.6            \n") == [("libc", 0.0395)]


def test_the_kernels_parts_with_what_they_call() -> None:
    parts = cpu_layers.parse_kernel_parts(SYMBOLS)
    assert parts == pytest.approx(
        {"socket sends": 0.1344, "socket reads": 0.0161, "event-loop waits": 0.0676}
    )
    assert cpu_layers.parse_kernel_parts("") == dict.fromkeys(cpu_layers.KERNEL_PARTS, 0.0)


# Sends and reads 100 bytes over loopback TCP in a loop for 1.5 s.
_SENDER = """
import socket, time
server = socket.create_server(("127.0.0.1", 0))
a = socket.create_connection(server.getsockname())
b, _ = server.accept()
end = time.monotonic() + 1.5
while time.monotonic() < end:
    a.sendall(b"x" * 100)
    b.recv(100)
"""


def test_a_real_process_recorded(tmp_path: Path) -> None:
    reason = cpu_layers.unavailable()
    if reason is not None:
        pytest.skip(reason)
    child = subprocess.Popen([sys.executable, "-c", _SENDER])
    data = tmp_path / "perf.data"
    try:
        recorder = cpu_layers.start_record(child.pid, 1.0, data)
        _, err = recorder.communicate(timeout=60)
        assert recorder.returncode == 0, err.decode()
    finally:
        child.wait(timeout=30)
    summary = cpu_layers.summarise(data)
    layers = dict(summary["layers"])
    assert layers["interpreter"] > 0.05
    assert layers["kernel"] > 0.2  # a system call per line of the loop
    assert summary["kernel_parts"]["socket sends"] > 0.05
    assert summary["kernel_parts"]["socket reads"] > 0.01


def _layer_point(kind: str, clients: int, cpu: float, interpreter: float) -> dict[str, object]:
    return {
        "kind": kind,
        "clients": clients,
        "rps": 1000.0,
        "cpu_us": cpu,
        "user_us": cpu * 0.7,
        "kernel_us": cpu * 0.3,
        "layers": [
            ["interpreter", interpreter],
            ["kernel", 0.3],
            ["uvloop", 0.05],
            ["libc", 0.05],
        ],
        "kernel_parts": {"socket sends": 0.1, "socket reads": 0.02, "event-loop waits": 0.08},
    }


def test_the_report_shows_each_layers_microseconds_and_the_missed_row_names_them() -> None:
    results = copy.deepcopy(RESULTS)
    results["cpu_layers"] = {
        "points": [_layer_point("rest", 1, 300.0, 0.6), _layer_point("rest", 16, 100.0, 0.6)]
    }
    markdown = report.render(results, {}, "Benchmarks", baseline=None)
    assert "## The gateway's CPU by layer (perf, CPU samples, microseconds per request)" in markdown
    assert "| REST, 1 client | 300 | 180 | uvloop 15 | 15 | 90 | 30 / 6 / 24 / 30 |" in markdown
    assert "| REST, 16 clients | 100 | 60 | uvloop 5 | 5 | 30 | 10 / 2 / 8 / 10 |" in markdown
    note = next(line for line in markdown.splitlines() if line.startswith("- REST at 1 client"))
    assert (
        "perf's CPU samples at this point (a separate run at 300 us a request, perf's own cost"
        " included): the interpreter running tfsgate's Python 180 us, the kernel 90 us (socket"
        " sends 30 us: each carries loopback's delivery to the receiver and its wake-up), C"
        " extensions and libc 30 us. At 16 clients the interpreter took 60 us a request." in note
    )


def test_a_machine_without_perf_is_said_in_the_report() -> None:
    results = {**RESULTS, "cpu_layers": {"skipped": "no `perf` on PATH (Debian's linux-perf)"}}
    markdown = report.render(results, {}, "Benchmarks", baseline=None)
    assert (
        "The CPU by layer (perf) was not measured: no `perf` on PATH (Debian's linux-perf)."
        in markdown
    )
