"""The python backend stub loads our interpreter's libpython from the backend directory: with a
Python whose library is not where the dynamic linker looks (pyenv, conda, a source build) the stub
never started and every model load waited out its deadline."""

from __future__ import annotations

import subprocess
import sysconfig
from pathlib import Path

import pytest

from control_plane.triton import embedded
from control_plane.triton.embedded import EmbeddedTriton, libpython, prepare_backend_dir


def test_the_stub_resolves_our_libpython_from_the_backend_directory(tmp_path: Path) -> None:
    library = libpython()
    if library is None:
        pytest.skip("this Python has no shared library (the stub cannot run on it at all)")
    triton = EmbeddedTriton(tmp_path / "repository", tmp_path)
    backends = prepare_backend_dir(tmp_path / "triton" / "backends")
    prepare_backend_dir(backends)  # again, as every Triton start does: the links stay
    linked = backends / "python" / "lib" / library.name
    assert linked.resolve() == library.resolve()
    ldd = subprocess.run(
        ["ldd", str(backends / "python" / "triton_python_backend_stub")],
        env=triton._environment(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (line,) = [line for line in ldd.splitlines() if library.name in line]
    assert f"=> {linked} " in line, ldd


def test_a_python_without_a_shared_library_links_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = sysconfig.get_config_var
    static = {"INSTSONAME": "libpython3.11.a"}
    monkeypatch.setattr(
        embedded.sysconfig, "get_config_var", lambda name: static.get(name, real(name))
    )
    assert libpython() is None
    backends = prepare_backend_dir(tmp_path / "backends")
    assert not (backends / "python" / "lib").exists()
    assert (backends / "python" / "triton_python_backend_stub").exists()
