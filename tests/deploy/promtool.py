"""Prometheus' own checker, ``promtool`` (Debian's ``prometheus`` package; .ci/prepare-docker
installs it): tests that need it skip with the reason when it is absent."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip(
            "promtool is not installed (apt-get install prometheus; .ci/prepare-docker does)"
        )
    return found


def check(kind: str, path: Path) -> subprocess.CompletedProcess[str]:
    """``promtool check config|rules PATH``; returns the completed process (not raising)."""
    return subprocess.run(
        [promtool(), "check", kind, str(path)], capture_output=True, text=True, timeout=60
    )
