"""Factory SavedModels (``tfsgate/examples/``) for tests, written by TensorFlow in a child process
(TensorFlow stays out of pytest).

Writing one costs a TensorFlow start (seconds of CPU), so the session's shared models go through
``cached_model``: kept in pytest's cache directory, keyed by the factory package's source and
the TensorFlow and Keras versions, and copied from there on later runs, so the fast loop does not
start TensorFlow again for models it already has.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import tfsgate.examples

_WRITE = (
    "import json, os, sys; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'\n"
    "from tfsgate import examples\n"
    "for kind, path, kwargs in json.loads(sys.argv[1]):\n"
    "    getattr(examples, 'write_' + kind)(path, **kwargs)\n"
)


def write_models(*models: tuple[str, Path, dict[str, Any]]) -> None:
    """Write each (factory kind, version directory, factory kwargs) in one TensorFlow process."""
    spec = [(kind, str(path), kwargs) for kind, path, kwargs in models]
    subprocess.run([sys.executable, "-c", _WRITE, json.dumps(spec)], check=True)


def write_model(kind: str, target: Path) -> Path:
    """Write ``examples.<kind>`` (e.g. ``write_half_plus_two``) at ``target``."""
    write_models((kind.removeprefix("write_"), target, {}))
    return target


def _key(kind: str) -> str:
    digest = hashlib.sha256()
    for source in sorted(Path(tfsgate.examples.__file__).parent.glob("*.py")):
        digest.update(source.read_bytes())
    for package in ("tensorflow", "keras"):
        digest.update(importlib.metadata.version(package).encode())
    return f"{kind}-{digest.hexdigest()[:16]}"


def cached_model(kind: str, target: Path, cache: Path | None) -> Path:
    """``write_model``, through ``cache`` (a directory kept between runs) when there is one."""
    if cache is None:
        return write_model(kind, target)
    kept = cache / _key(kind)
    if not kept.is_dir():
        staging = Path(tempfile.mkdtemp(dir=cache, prefix=".writing-"))
        write_model(kind, staging / "model")
        with contextlib.suppress(OSError):  # another session may have won the race: fine
            (staging / "model").rename(kept)
        shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(kept, target)
    return target


def model_config(*models: tuple[str, Path], extra: str = "") -> str:
    """A models.config serving every version of each (name, base path)."""
    entries = "".join(
        f'config {{ name: "{name}" base_path: "{base}" model_platform: "tensorflow" '
        f"model_version_policy {{ all {{}} }} {extra} }} "
        for name, base in models
    )
    return f"model_config_list {{ {entries}}}\n"
