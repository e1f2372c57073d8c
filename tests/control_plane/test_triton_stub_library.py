"""The python backend stub loads our interpreter's libpython from the backend directory: with a
Python whose library is not where the dynamic linker looks (pyenv, conda, a source build) the stub
never started and every model load waited out its deadline."""

from __future__ import annotations

import subprocess
import sysconfig
from pathlib import Path

import pytest

from control_plane.triton import embedded
from control_plane.triton.embedded import (
    EmbeddedTriton,
    TritonStartError,
    libpython,
    prepare_backend_dir,
    pytriton_root,
    stub_path,
)


def test_the_stub_resolves_our_libpython_from_the_backend_directory(tmp_path: Path) -> None:
    library = libpython()
    if library is None:
        pytest.skip("this Python has no shared library (the stub cannot run on it at all)")
    triton = EmbeddedTriton(tmp_path / "repository", tmp_path)
    backends = prepare_backend_dir(triton.backends)
    prepare_backend_dir(backends)  # again, as every Triton start does: the links stay
    linked = backends / "python" / "lib" / library.name
    assert linked.resolve() == library.resolve()
    ldd = subprocess.run(
        ["ldd", str(stub_path(backends))],
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
    assert stub_path(backends).exists()


def _stub_without_its_library(triton: EmbeddedTriton) -> Path | None:
    """A stub of the wheel's whose libpython this machine's linker cannot find."""
    for stub in sorted((pytriton_root() / "python_backend_stubs").glob("*/*_stub")):
        ldd = subprocess.run(
            ["ldd", str(stub)], env=triton._environment(), capture_output=True, text=True
        ).stdout
        if "libpython" in ldd and "not found" in ldd:
            return stub
    return None


def test_a_stub_that_cannot_start_fails_the_start_at_once(tmp_path: Path) -> None:
    """Triton would report ready and wait for ever on the first model's load."""
    triton = EmbeddedTriton(tmp_path / "repository", tmp_path)
    backends = prepare_backend_dir(triton.backends)
    triton.check_stub()  # our own: it loads
    broken = _stub_without_its_library(triton)
    if broken is None:
        pytest.skip("every Python the Triton wheel has a stub for is installed here")
    link = stub_path(backends)
    link.unlink()
    link.symlink_to(broken)
    with pytest.raises(TritonStartError, match="error while loading shared libraries: libpython"):
        triton.check_stub()
