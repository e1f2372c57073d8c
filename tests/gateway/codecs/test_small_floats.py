"""``small_floats``, the one-pass reading of small float vectors and matrices, gives the general
path's tensor whenever it answers, and leaves everything else to it."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.codecs import json_tensors
from gateway.codecs.json_tensors import small_floats
from gateway.codecs.jsontext import FLT_MAX

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, FLT_MAX, -FLT_MAX, FLT_MAX * 1.0000001, 5e-324, 1e39]),
    st.integers(-(2**60), 2**60),
    st.booleans(),
)
values = st.one_of(
    st.lists(numbers, max_size=40),
    st.integers(1, 6).flatmap(
        lambda width: st.lists(st.lists(numbers, min_size=width, max_size=width), max_size=8)
    ),
    st.lists(st.lists(numbers, max_size=4), max_size=4),  # ragged too
)


def _general(value: Any, tf_name: str) -> np.ndarray | None:
    """The path without ``small_floats``: its tensor, or None where it raises."""
    try:
        shape = json_tensors._dense_shape(value)
        flat: list[Any] = []
        try:
            json_tensors._walk(value, 0, shape, tf_name, flat, bulk=True)
            return json_tensors._to_array(flat, shape, tf_name)
        except json_tensors._Slow:
            flat = []
            json_tensors._walk(value, 0, shape, tf_name, flat, bulk=False)
            return json_tensors._exact_array(flat, shape, tf_name)
    except Exception:  # noqa: BLE001 - an error the general path reports
        return None


@settings(max_examples=400, deadline=None)
@given(value=values, tf_name=st.sampled_from(["DT_FLOAT", "DT_DOUBLE", "DT_INT32"]))
def test_answers_only_what_the_general_path_answers_the_same(value: Any, tf_name: str) -> None:
    fast = small_floats(value, tf_name)
    if fast is None:
        return
    general = _general(value, tf_name)
    assert general is not None
    assert fast.dtype == general.dtype and fast.shape == general.shape
    assert np.array_equal(fast, general, equal_nan=True)
    assert np.array_equal(np.signbit(fast), np.signbit(general))


@pytest.mark.parametrize(
    ("value", "tf_name", "shape"),
    [
        ([[1.0], [2.0], [5.0]], "DT_FLOAT", (3, 1)),
        ([0.5, -1.5], "DT_DOUBLE", (2,)),
    ],
)
def test_the_online_shapes_take_it(value: Any, tf_name: str, shape: tuple[int, ...]) -> None:
    array = small_floats(value, tf_name)
    assert array is not None and array.shape == shape


@pytest.mark.parametrize(
    "value",
    [
        [[1.0], [2]],  # an int: the general path checks its range
        [[1.0], [True]],  # a bool: TF's type error
        [[1.0], [2.0, 3.0]],  # ragged
        [1.0, [2.0]],  # a list where a number was
        [[[1.0]]],  # deeper
        [math.nan],  # the NaN literal
        [1e39],  # beyond float32
        [],
        [0.5] * (json_tensors.SMALL + 1),
    ],
)
def test_everything_else_is_left_to_the_general_path(value: Any) -> None:
    assert small_floats(value, "DT_FLOAT") is None
