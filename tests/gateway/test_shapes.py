"""Fitting TF Serving's tensor shapes to Triton's configs and back."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gateway import shapes
from gateway.codecs import json_requests as jr
from tests.support.signatures import spec
from tfsgate.core.signatures import SignatureSpec
from tfsgate.core.status import Code, ServingError

PREDICT = "tensorflow/serving/predict"


def sig(**inputs: Any) -> SignatureSpec:
    return SignatureSpec("serving_default", PREDICT, inputs, {"y": spec("y")})


ONE_FLOAT = sig(x=spec("x"))


# --------------------------------------------------------------------------- fitting to Triton


@pytest.mark.parametrize(
    ("shape", "want", "fitted"),
    [
        ((3,), (-1, 1), (3, 1)),
        ((3, 1), (-1, 1), (3, 1)),
        ((2, 4), (-1, 4, 1, 1), (2, 4, 1, 1)),
        ((2, 5), (-1, -1), (2, 5)),
        ((2, 5), None, (2, 5)),
        ((), (-1, 1), (1, 1)),
    ],
)
def test_fit_to_signature(
    shape: tuple[int, ...], want: tuple[int, ...] | None, fitted: tuple[int, ...]
) -> None:
    array = np.zeros(shape, np.float32)
    result = shapes.fit_to_signature(array, spec("x", shape=want))
    assert result.shape == fitted
    added = result.ndim - array.ndim
    assert shapes.unfit_output(result, added).shape == shape


@pytest.mark.parametrize(
    ("shape", "want"), [((3, 2), (-1, 1)), ((3,), (-1, 2)), ((2, 2, 2), (-1, 2))]
)
def test_fit_to_signature_refuses_what_cannot_match(
    shape: tuple[int, ...], want: tuple[int, ...]
) -> None:
    with pytest.raises(ServingError) as caught:
        shapes.fit_to_signature(np.zeros(shape), spec("x", shape=want))
    assert caught.value.code is Code.INVALID_ARGUMENT


def test_unfit_output_leaves_other_shapes_alone() -> None:
    assert shapes.unfit_output(np.zeros((3, 2)), 1).shape == (3, 2)
    assert shapes.unfit_output(np.zeros((3, 1)), 0).shape == (3, 1)


def test_half_plus_two_row_request_answers_a_flat_list() -> None:
    decoded = jr.decode_predict_request(b'{"instances": [2.0, 3.0, 4.0]}', ONE_FLOAT)
    fitted = shapes.fit_to_signature(decoded.tensors["x"], ONE_FLOAT.inputs["x"])
    y = fitted * np.float32(0.5) + np.float32(2.0)  # what Triton answers: shape [3, 1]
    answer = shapes.unfit_output(y, fitted.ndim - decoded.tensors["x"].ndim)
    assert jr.encode_predict_response({"y": answer}, row_format=True) == (
        b'{"predictions":[3.0,3.5,4.0]}'
    )
