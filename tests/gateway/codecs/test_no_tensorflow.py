"""Gateway processes must never load TensorFlow proper (560 MB, 3 s): the kernel and the gateway
import protos only. One child process imports the modules in turn and reports, after each, what of
TensorFlow it has loaded, so the first module that pulls TensorFlow in is the one named."""

from __future__ import annotations

import json
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
    "gateway.codecs.json_numeric",
    "gateway.codecs.json_requests",
    "gateway.codecs.json_model_info",
    "gateway.codecs.tf_example",
    "gateway.dataplane",
    "gateway.rest",
    "gateway.grpc_service",
]
PROBE = """
import importlib, json, sys
loaded = {}
for module in sys.argv[1:]:
    importlib.import_module(module)
    loaded[module] = sorted(m for m in sys.modules if m.startswith(("tensorflow.python", "keras")))
print(json.dumps(loaded))
"""


@pytest.fixture(scope="module")
def loaded_after() -> dict[str, list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *MODULES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    loaded: dict[str, list[str]] = json.loads(result.stdout)
    return loaded


@pytest.mark.parametrize("module", MODULES)
def test_importing_does_not_load_tensorflow_python(
    loaded_after: dict[str, list[str]], module: str
) -> None:
    assert loaded_after[module][:5] == []
