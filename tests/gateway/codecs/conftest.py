"""Fixtures for the codec tests. TensorFlow is used only to cross-check, never by the code under test."""

from __future__ import annotations

import pytest

from tfsgate.core.signatures import SignatureSpec, TensorSpec


def spec(key: str, dtype: str = "DT_FLOAT", shape: tuple[int, ...] | None = (-1, 1)) -> TensorSpec:
    return TensorSpec(key=key, tensor_name=f"{key}:0", dtype=dtype, shape=shape)


@pytest.fixture
def half_plus_two() -> SignatureSpec:
    return SignatureSpec(
        "serving_default", "tensorflow/serving/predict", {"x": spec("x")}, {"y": spec("y")}
    )
