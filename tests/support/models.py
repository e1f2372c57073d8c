"""Factory SavedModels for e2e tests, written in a subprocess (TensorFlow stays out of pytest)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def model_config(*models: tuple[str, Path], extra: str = "") -> str:
    """A models.config serving every version of each (name, base path)."""
    entries = "".join(
        f'config {{ name: "{name}" base_path: "{base}" model_platform: "tensorflow" '
        f"model_version_policy {{ all {{}} }} {extra} }} "
        for name, base in models
    )
    return f"model_config_list {{ {entries}}}\n"
