"""Fixtures building real base paths with version directories in a temp directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

MakeVersion = Callable[..., Path]


@pytest.fixture
def make_version(tmp_path: Path) -> MakeVersion:
    """Create ``<base>/<dirname>`` under tmp_path; ``ready`` adds ``saved_model.pb``."""

    def make(base: str, dirname: str, *, ready: bool = True, graph: str = "saved_model.pb") -> Path:
        version_dir = tmp_path / base / dirname
        (version_dir / "variables").mkdir(parents=True, exist_ok=True)
        if ready:
            (version_dir / graph).write_bytes(b"\x08\x01")
        return version_dir

    return make
