"""``tfsgate.worker_supervisor``: N workers started, signals forwarded, one exit stops the rest;
real processes (small Python scripts standing in for gateway workers)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.process

# A worker that records its pid and exits 0 on SIGTERM; once a file named exit appears, the
# lowest-pid worker exits with the status written in it.
WORKER = """
import os, signal, sys, time
from pathlib import Path
out = Path(sys.argv[1])
(out / f"{os.getpid()}.pid").write_text("")
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    if (out / "exit").exists() and os.getpid() == min(int(p.stem) for p in out.glob("*.pid")):
        sys.exit(int((out / "exit").read_text()))
    time.sleep(0.05)
"""


def start(tmp_path: Path, count: int, *extra: str) -> subprocess.Popen[bytes]:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    command = [sys.executable, "-m", "tfsgate.worker_supervisor", f"--count={count}", *extra]
    return subprocess.Popen([*command, "--", sys.executable, str(script), str(tmp_path)])


def wait_workers(tmp_path: Path, count: int) -> list[int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = [int(p.stem) for p in tmp_path.glob("*.pid")]
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
    metrics.mkdir()
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


def test_one_worker_exiting_stops_the_others_with_its_status(tmp_path: Path) -> None:
    supervisor = start(tmp_path, 3)
    pids = wait_workers(tmp_path, 3)
    (tmp_path / "exit").write_text("3")
    assert supervisor.wait(timeout=30) == 3
    assert all(gone(pid) for pid in pids)


def test_a_worker_exiting_cleanly_unasked_is_a_failure(tmp_path: Path) -> None:
    supervisor = start(tmp_path, 2)
    wait_workers(tmp_path, 2)
    (tmp_path / "exit").write_text("0")
    assert supervisor.wait(timeout=30) == 1


def test_a_command_is_required() -> None:
    answer = subprocess.run(
        [sys.executable, "-m", "tfsgate.worker_supervisor", "--count=2"],
        capture_output=True,
        text=True,
    )
    assert answer.returncode == 2
    assert "worker command" in answer.stderr
