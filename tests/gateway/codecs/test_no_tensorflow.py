"""Gateway processes must never load TensorFlow proper (560 MB, 3 s): the codecs import protos only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
MODULES = [
    "tfsgate.core.status",
    "tfsgate.core.dtypes",
    "tfsgate.core.routing_table",
    "gateway.codecs",
    "gateway.codecs.jsontext",
    "gateway.codecs.tensor_proto",
    "gateway.codecs.json_tensors",
    "gateway.codecs.json_requests",
    "gateway.codecs.json_model_info",
    "gateway.codecs.tf_example",
]


@pytest.mark.parametrize("module", MODULES)
def test_importing_does_not_load_tensorflow_python(module: str) -> None:
    probe = (
        "import importlib, sys\n"
        f"importlib.import_module({module!r})\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('tensorflow.python', 'keras')))\n"
        "print(len(loaded), loaded[:5])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("0 "), result.stdout
