"""Code in tfsgate/runtime runs inside Triton, copied alone into the model repository: it may import
the standard library, numpy and the engine it drives, and nothing of ours."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import tfsgate.runtime

RUNTIME = Path(tfsgate.runtime.__file__).parent
# google: protobuf, which onnxruntime and tensorflow both require (tf_example.py parses with it).
# ai_edge_litert: LiteRT, the TFLite runner's engine.
ENGINES = {
    "numpy",
    "tensorflow",
    "onnxruntime",
    "ai_edge_litert",
    "triton_python_backend_utils",
    "google",
}


def imported_roots(source: str) -> list[tuple[int, str]]:
    """(line, top-level package) of every import; a relative import counts as "." (ours)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, "." if node.level else (node.module or "").split(".")[0]))
    return found


def disallowed(source: str) -> list[str]:
    allowed = set(sys.stdlib_module_names) | ENGINES | {"__future__"}
    return [f"line {line}: {root}" for line, root in imported_roots(source) if root not in allowed]


@pytest.mark.parametrize("path", sorted(RUNTIME.glob("*.py")), ids=lambda p: p.name)
def test_runtime_module_is_self_contained(path: Path) -> None:
    assert disallowed(path.read_text()) == []


@pytest.mark.parametrize(
    "source",
    [
        "import gateway.rest",
        "from tfsgate.core import status",
        "from control_plane import reconciler",
        "from . import tf_worker",
        "import requests",
        "def f():\n    from tfsgate import examples\n",
    ],
)
def test_the_check_catches(source: str) -> None:
    assert disallowed(source) != []
