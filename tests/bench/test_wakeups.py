"""``bench/sections/wakeups.py``'s two ways of measuring one client again, on real processes: the
spinners that keep every CPU busy (at the idle scheduling class, gone when the block ends), and
the gateway alone on a CPU (every thread pinned, everyone back on every CPU after)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.procs import cpu_seconds, group_pids
from bench.sections.wakeups import own_cpu, spinners


def test_spinners_run_at_idle_priority_and_end_with_the_block() -> None:
    with spinners(2) as started:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # each sets its own class once running
            policies = {os.sched_getscheduler(p.pid) for p in started}
            if policies == {os.SCHED_IDLE}:
                break
            time.sleep(0.05)
        assert policies == {os.SCHED_IDLE}
        before = sum(cpu_seconds(p.pid) for p in started)
        time.sleep(0.5)  # this test sleeps: the CPUs are theirs
        assert sum(cpu_seconds(p.pid) for p in started) > before
    assert all(p.poll() is not None for p in started)


_TWO_THREADS = (
    "import threading, time\n"
    "threading.Thread(target=time.sleep, args=(60,)).start()\n"
    "time.sleep(60)\n"
)
# A group leader with a child in its group: Triton and its Python stub.
_GROUP = (
    "import subprocess, sys, time\n"
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "time.sleep(60)\n"
)


def _affinities(pid: int) -> set[frozenset[int]]:
    return {
        frozenset(os.sched_getaffinity(int(task.name)))
        for task in Path(f"/proc/{pid}/task").iterdir()
    }


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="pinning needs 2 CPUs")
def test_the_gateway_alone_on_the_last_cpu_then_everyone_back() -> None:
    cpus = sorted(os.sched_getaffinity(0))
    gateway = subprocess.Popen([sys.executable, "-c", _TWO_THREADS])
    triton = subprocess.Popen([sys.executable, "-c", _GROUP], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while (
            len(list(Path(f"/proc/{gateway.pid}/task").iterdir())) < 2
            or len(group_pids(triton.pid)) < 2
        ) and time.monotonic() < deadline:
            time.sleep(0.05)
        stub = next(pid for pid in group_pids(triton.pid) if pid != triton.pid)
        with own_cpu(gateway.pid, lambda: triton.pid) as pinned:
            assert pinned
            assert _affinities(gateway.pid) == {frozenset(cpus[-1:])}
            for pid in (triton.pid, stub, os.getpid()):
                assert _affinities(pid) == {frozenset(cpus[:-1])}
            with subprocess.Popen(["sleep", "5"]) as tool:  # a load generator started meanwhile
                assert os.sched_getaffinity(tool.pid) == set(cpus[:-1])
                tool.kill()
        for pid in (gateway.pid, triton.pid, stub, os.getpid()):
            assert _affinities(pid) == {frozenset(cpus)}
    finally:
        gateway.kill()
        os.killpg(triton.pid, 9)
        gateway.wait()
        triton.wait()
