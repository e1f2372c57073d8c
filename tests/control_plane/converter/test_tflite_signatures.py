"""Signatures of a ``model.tflite`` as TF Serving's ``TfLiteSession::Create`` reads them, on TF
Serving's own test models (no TensorFlow: LiteRT reads them); the factory's TF2 conversion with its
signature runner is served end to end in tests/tfsgate/test_tflite_serve.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from control_plane.converter.savedmodel import SavedModelError
from control_plane.converter.tflite import TfLitePlan, read_tflite
from control_plane.sources.base_path import discover_versions
from tfsgate.core.signatures import TensorSpec


def test_a_model_without_signatures_gets_tf_servings_generated_one(shared_testdata: Path) -> None:
    specs, plans = read_tflite(shared_testdata / "saved_model_half_plus_two_tflite" / "00000123")
    (signature,) = specs.values()
    assert signature.name == "serving_default"
    assert signature.method_name == "tensorflow/serving/predict"
    assert signature.inputs == {"x": TensorSpec("x", "x", "DT_FLOAT", (-1, 1))}
    assert signature.outputs == {"y": TensorSpec("y", "y", "DT_FLOAT", (-1, 1))}
    assert plans == {"serving_default": TfLitePlan({"x": "x"}, {"y": "y"})}


def test_signature_defs_metadata_wins(shared_testdata: Path) -> None:
    """saved_model_half_plus_two_tflite_with_sigdef: the SignatureDef maps key x to the tensor
    named tflite_input."""
    version = shared_testdata / "saved_model_half_plus_two_tflite_with_sigdef" / "00000123"
    specs, plans = read_tflite(version)
    signature = specs["serving_default"]
    assert signature.inputs["x"].tensor_name == "tflite_input"
    assert signature.outputs["y"].tensor_name == "y"
    assert plans["serving_default"] == TfLitePlan({"x": "tflite_input"}, {"y": "y"})


def test_a_file_litert_cannot_read_fails_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "model.tflite").write_bytes(b"not a flatbuffer")
    with pytest.raises(SavedModelError, match="Cannot build Interpreter"):
        read_tflite(tmp_path)


def test_a_tflite_only_directory_is_a_version_only_when_tflite_is_preferred(
    tmp_path: Path,
) -> None:
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "model.tflite").write_bytes(b"")
    assert discover_versions(tmp_path) == {}
    assert discover_versions(tmp_path, tflite=True) == {1: tmp_path / "1"}
