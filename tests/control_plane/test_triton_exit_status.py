"""What the supervisor logs when the embedded Triton ends: its exit code or the signal that killed
it (tritonserver 2.51 has died of SIGSEGV under load here; the log should say so)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from control_plane.triton.embedded import EmbeddedTriton


def ended(tmp_path: Path, code: str) -> EmbeddedTriton:
    triton = EmbeddedTriton(tmp_path / "repository", tmp_path)
    triton._process = subprocess.Popen([sys.executable, "-c", code])
    triton._process.wait(timeout=30)
    return triton


def test_a_triton_killed_by_a_signal_names_it(tmp_path: Path) -> None:
    triton = ended(tmp_path, "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    assert triton.exit_status() == "signal 11 (SIGSEGV)"


def test_a_triton_that_exited_gives_its_code(tmp_path: Path) -> None:
    assert ended(tmp_path, "raise SystemExit(3)").exit_status() == "exit code 3"


def test_a_running_or_never_started_triton(tmp_path: Path) -> None:
    triton = EmbeddedTriton(tmp_path / "repository", tmp_path)
    assert triton.exit_status() == "not started"
    triton._process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert triton.exit_status() == "running"
    finally:
        triton._process.kill()
        triton._process.wait()
