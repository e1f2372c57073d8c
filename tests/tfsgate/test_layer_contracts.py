"""The import-linter contracts in pyproject.toml (checked by ``make lint``) name the composition
root module by module; every top-level module of tfsgate other than the kernel and the runtime
must be in them, or a gateway or control-plane module could import a new one unnoticed."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import pytest

import tfsgate

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
NOT_COMPOSITION = {"tfsgate.core", "tfsgate.runtime"}


def composition_root() -> set[str]:
    found = {f"tfsgate.{m.name}" for m in pkgutil.iter_modules(tfsgate.__path__)}
    return found - NOT_COMPOSITION


def contracts() -> dict[str, dict[str, object]]:
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    return {c["name"]: c for c in config}


@pytest.mark.parametrize("source", ["gateway", "control_plane"])
def test_every_composition_module_is_forbidden_to(source: str) -> None:
    (contract,) = [c for c in contracts().values() if c.get("source_modules") == [source]]
    forbidden = set(contract["forbidden_modules"])  # type: ignore[call-overload]
    assert composition_root() - forbidden == set()
