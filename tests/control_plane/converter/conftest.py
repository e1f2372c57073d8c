"""SavedModels for the converter tests, written once per session in a child process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.control_plane.converter.models import MODELS

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def saved_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """name -> version directory of each SavedModel in ``models.py``."""
    base = tmp_path_factory.mktemp("saved_models")
    subprocess.run(
        [sys.executable, "-m", "tests.control_plane.converter.models", str(base)],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    return {name: base / relative for name, relative in MODELS.items()}
