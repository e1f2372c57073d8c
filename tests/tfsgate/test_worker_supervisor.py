"""``tfsgate.worker_supervisor``: N workers started, signals forwarded, a worker that exits started
again while the others run, one that fails to start stops the rest; real processes (small Python
scripts standing in for gateway workers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.process

# A worker that records its pid and a live gauge and a counter file in the Prometheus multiprocess
# directory, exits 0 on SIGTERM, and once a file exit-<its pid> appears exits with the status
# written in it.
WORKER = """
import os, signal, sys, time
from pathlib import Path
out = Path(sys.argv[1])
pid = os.getpid()
metrics = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
(metrics / f"gauge_livemin_{pid}.db").write_text("")
(metrics / f"counter_{pid}.db").write_text("")
(out / f"{pid}.pid").write_text("")
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    if (out / f"exit-{pid}").exists():
        sys.exit(int((out / f"exit-{pid}").read_text()))
    time.sleep(0.05)
"""


def start(tmp_path: Path, count: int, *extra: str) -> subprocess.Popen[bytes]:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    (tmp_path / "metrics").mkdir(exist_ok=True)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    command = [sys.executable, "-m", "tfsgate.worker_supervisor", f"--count={count}", *extra]
    return subprocess.Popen([*command, "--", sys.executable, str(script), str(tmp_path)], env=env)


def wait_workers(tmp_path: Path, count: int) -> list[int]:
    """The pids of ``count`` workers running (written their pid file, not ended)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = sorted(int(p.stem) for p in tmp_path.glob("*.pid") if not gone(int(p.stem)))
        if len(pids) == count:
            return pids
        time.sleep(0.05)
    raise AssertionError(f"{count} workers did not start")


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def test_sigterm_is_forwarded_and_the_metrics_directory_removed(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics"
    supervisor = start(tmp_path, 2, f"--remove={metrics}")
    pids = wait_workers(tmp_path, 2)
    rss_kb = int(
        next(
            line.split()[1]
            for line in Path(f"/proc/{supervisor.pid}/status").read_text().splitlines()
            if line.startswith("VmRSS:")
        )
    )
    # The standard library alone: the full CLI holds about 100 MB.
    assert rss_kb < 40 * 1024
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=30) == 0
    assert all(gone(pid) for pid in pids)
    assert not metrics.exists()


def test_a_worker_that_exits_is_started_again_while_the_others_run(tmp_path: Path) -> None:
    supervisor = start(tmp_path, 3)
    first, second, third = wait_workers(tmp_path, 3)
    (tmp_path / f"exit-{first}").write_text("3")  # a crash's status
    os.kill(second, signal.SIGKILL)  # an OOM kill
    began = time.monotonic()
    while not (gone(first) and gone(second)):
        assert time.monotonic() - began < 30, "the workers did not exit"
        time.sleep(0.02)
    replaced = wait_workers(tmp_path, 3)
    waited = time.monotonic() - began
    assert third in replaced and first not in replaced and second not in replaced
    assert supervisor.poll() is None
    assert waited >= 0.9  # the first restart's delay (tfsgate/worker_restarts.py)
    # The dead workers' live gauges leave the multiprocess directory; their counters stay summed.
    metrics = tmp_path / "metrics"
    assert not (metrics / f"gauge_livemin_{first}.db").exists()
    assert not (metrics / f"gauge_livemin_{second}.db").exists()
    assert (metrics / f"gauge_livemin_{third}.db").exists()
    assert (metrics / f"counter_{first}.db").exists()
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=30) == 0
    assert all(gone(pid) for pid in replaced)


def test_a_worker_that_fails_to_start_stops_the_others_with_its_status(tmp_path: Path) -> None:
    supervisor = start(tmp_path, 3)
    pids = wait_workers(tmp_path, 3)
    (tmp_path / f"exit-{pids[1]}").write_text("255")  # tfsgate's "Failed to start server"
    assert supervisor.wait(timeout=30) == 255
    assert all(gone(pid) for pid in pids)


def test_the_supervisor_sleeps_while_its_workers_run(tmp_path: Path) -> None:
    """No polling: between a worker's exit (SIGCHLD) and a signal there is nothing to wake for."""
    supervisor = start(tmp_path, 2)
    wait_workers(tmp_path, 2)
    time.sleep(0.5)  # its start-up's log lines written

    def switches() -> int:
        status = Path(f"/proc/{supervisor.pid}/status").read_text()
        return int(status.split("voluntary_ctxt_switches:")[1].split()[0])

    before = switches()
    time.sleep(2)
    assert switches() - before <= 1  # a loop checking every 0.2 s would have woken 10 times
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=30) == 0


def test_workers_are_stopped_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    """A SIGKILLed supervisor cannot forward anything: its workers get SIGTERM from the kernel
    (the parent-death signal) instead of serving on, orphaned, on the role's ports."""
    supervisor = start(tmp_path, 2)
    pids = wait_workers(tmp_path, 2)
    supervisor.kill()
    supervisor.wait(timeout=30)
    deadline = time.monotonic() + 30
    while not all(gone(pid) for pid in pids):
        assert time.monotonic() < deadline, "the workers outlived their supervisor"
        time.sleep(0.05)


def test_a_command_is_required() -> None:
    answer = subprocess.run(
        [sys.executable, "-m", "tfsgate.worker_supervisor", "--count=2"],
        capture_output=True,
        text=True,
    )
    assert answer.returncode == 2
    assert "worker command" in answer.stderr
