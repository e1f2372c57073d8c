"""Fixtures for the codec tests. TensorFlow is used only to cross-check, never by the code under test."""

from __future__ import annotations

import pytest

from tests.support.signatures import spec
from tfsgate.core.signatures import SignatureSpec


@pytest.fixture
def half_plus_two() -> SignatureSpec:
    return SignatureSpec(
        "serving_default", "tensorflow/serving/predict", {"x": spec("x")}, {"y": spec("y")}
    )
