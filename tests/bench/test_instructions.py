"""bench/instructions.py: callgrind's dumps read, a real process counted under valgrind, and the
report's table beside a baseline."""

from __future__ import annotations

import copy
import functools
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import instructions, report
from tests.bench.test_report import RESULTS

# The head of a dump as callgrind 3.19 writes it with --separate-threads=yes.
DUMP = """\
# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 8848
cmd:  python -m tfsgate.cli serve
part: 2
thread: 3

desc: Timerange: Basic block 14595489 - 93542356
desc: Trigger: dump window-2

positions: line
events: Ir
summary: 378806118
"""


def test_a_dump_is_read_for_its_trigger_thread_and_total() -> None:
    assert instructions.parse_dump(DUMP) == ("dump window-2", 3, 378806118)
    assert instructions.parse_dump("events: Ir\ntotals: 12\n") == ("", 1, 12)


def test_the_idle_rate_is_taken_off_the_loops_thread() -> None:
    idle = instructions.Window.joined(
        [instructions.Window(1.0, 1_500_000), instructions.Window(1.0, 500_000)]
    )
    assert idle.rate() == pytest.approx(1_000_000)
    busy = instructions.Window(4.0, 104_000_000)
    assert instructions.per_request(busy, idle, 1000) == pytest.approx(100_000)


# Echoes 100-byte requests over loopback TCP, one at a time, until the client leaves.
_ECHO = """
import socket, sys
server = socket.create_server(("127.0.0.1", 0))
print(server.getsockname()[1], flush=True)
connection, _ = server.accept()
while data := connection.recv(100):
    connection.sendall(data)
"""


def _exchange(sock: socket.socket, count: int) -> None:
    for _ in range(count):
        sock.sendall(b"x" * 100)
        received = 0
        while received < 100:
            received += len(sock.recv(100))


def test_a_real_process_counted_per_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reason = instructions.unavailable()
    if reason is not None:
        pytest.skip(reason)
    child = subprocess.Popen(
        [*instructions.wrapper(tmp_path), sys.executable, "-c", _ECHO],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            counter = instructions.Counter(child.pid, tmp_path)
            counter.start()
            _exchange(sock, 50)
            idle = counter.window(lambda: time.sleep(1.0))
            counts = (200, 400)
            runs = [counter.window(functools.partial(_exchange, sock, n)) for n in counts]
            # A dump that never shows up is an error, not a request path that cost nothing.
            monkeypatch.setattr(instructions, "_DUMP_WAIT_S", 1.0)
            elsewhere = instructions.Counter(child.pid, tmp_path / "elsewhere")
            with pytest.raises(TimeoutError):
                elsewhere.window(lambda: None)
    finally:
        child.wait(timeout=60)
    per = [instructions.per_request(run, idle, n) for run, n in zip(runs, counts, strict=True)]
    # A loop turn of the interpreter: a recv and a sendall, thousands of instructions, and the
    # same count per request whatever the run's length.
    assert all(1_000 < p < 1_000_000 for p in per), per
    assert per[1] == pytest.approx(per[0], rel=0.1)


def test_the_report_counts_beside_the_baseline() -> None:
    results = copy.deepcopy(RESULTS)
    results["instructions"] = {
        "points": [
            {"kind": "rest", "clients": 1, "requests": 1000, "loop_kir": 280.0},
            {"kind": "grpc", "clients": 1, "requests": 1000, "loop_kir": 330.0},
        ]
    }
    baseline = {"instructions": {"points": [{"kind": "rest", "clients": 1, "loop_kir": 300.0}]}}
    markdown = report.render(results, {}, "Benchmarks", baseline=baseline)
    assert "## Instructions per request (callgrind)" in markdown
    assert "| REST, 1 client | 280.0 k | 300.0 k | -6.7% |" in markdown
    assert "| gRPC, 1 client | 330.0 k | - | - |" in markdown
    alone = report.render(results, {}, "Benchmarks", baseline=None)
    assert "| REST, 1 client | 280.0 k |" in alone


def test_a_machine_without_valgrind_is_said_in_the_report() -> None:
    results = {**RESULTS, "instructions": {"skipped": "no `valgrind` on PATH (Debian's valgrind)"}}
    markdown = report.render(results, {}, "Benchmarks", baseline=None)
    assert (
        "Instructions per request (callgrind) were not counted: no `valgrind` on PATH" in markdown
    )
