"""The export child imports TensorFlow without Keras (``export.import_tensorflow``): TensorFlow's
``__init__`` would import Keras's optimizers eagerly, and scikit-learn (most of SciPy with it) and
matplotlib with them, on a fresh home's path to its first prediction. Conversions come out the
same, and ``tf.keras`` still works if something asks for it afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.tensorflow

CHILD = r"""
import json, sys
from control_plane.converter import export

tf = export.import_tensorflow()
after_import = sorted(m for m in ("keras", "sklearn", "matplotlib") if m in sys.modules)
export.main(["--saved_model", sys.argv[1], "--out", sys.argv[2]])
after_export = sorted(m for m in ("keras", "sklearn", "matplotlib") if m in sys.modules)
dense = tf.keras.layers.Dense(2)  # Keras imports on demand once TensorFlow is in
print(json.dumps({
    "after_import": after_import,
    "after_export": after_export,
    "keras_later": "keras" in sys.modules and dense.units == 2,
}))
"""


def test_the_export_child_converts_without_importing_keras(
    half_plus_two: Path, tmp_path: Path
) -> None:
    version = next(p for p in sorted(half_plus_two.iterdir()) if p.is_dir())
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, "-c", CHILD, str(version), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen == {"after_import": [], "after_export": [], "keras_later": True}
    verdict = json.loads((out / "verdict.json").read_text())
    runners = {name: v["runner"] for name, v in verdict["signatures"].items()}
    assert runners == {
        "classify_x_to_y": "onnxruntime",
        "regress_x2_to_y3": "onnxruntime",
        "regress_x_to_y": "onnxruntime",
        "regress_x_to_y2": "onnxruntime",
        "serving_default": "onnxruntime",
    }
    assert all(v["max_abs_error"] == 0.0 for v in verdict["signatures"].values())
