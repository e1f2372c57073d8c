"""Fixtures shared by the control plane's end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.reconcile import write_templates


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[float, Path]:
    """One half_plus_two SavedModel per ``b`` (tests only read them; versions are copies)."""
    return write_templates(tmp_path_factory.mktemp("templates"))
