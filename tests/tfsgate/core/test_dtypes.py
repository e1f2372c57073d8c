"""The element type table agrees with TensorFlow's own and with Triton's names."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from tfsgate.core import dtypes
from tfsgate.core.status import ServingError


@pytest.mark.parametrize("entry", dtypes.DTYPES, ids=lambda d: d.tf_name)
def test_table_agrees_with_tensorflow(tf: ModuleType, entry: dtypes.DType) -> None:
    tf_dtype = tf.dtypes.as_dtype(entry.tf_enum)
    # Python names three types differently from C++'s DataTypeString, which error messages use.
    cpp_names = {"float32": "float", "float64": "double", "float16": "half"}
    assert cpp_names.get(tf_dtype.name, tf_dtype.name) == entry.tf_string
    if entry.tf_name == "DT_STRING":
        assert entry.numpy == np.dtype(object)
    else:
        assert entry.numpy == np.dtype(tf_dtype.as_numpy_dtype)


@pytest.mark.parametrize(
    ("tf_name", "triton", "np_dtype"),
    [
        ("DT_FLOAT", "FP32", np.float32),
        ("DT_DOUBLE", "FP64", np.float64),
        ("DT_HALF", "FP16", np.float16),
        ("DT_INT8", "INT8", np.int8),
        ("DT_INT16", "INT16", np.int16),
        ("DT_INT32", "INT32", np.int32),
        ("DT_INT64", "INT64", np.int64),
        ("DT_UINT8", "UINT8", np.uint8),
        ("DT_UINT16", "UINT16", np.uint16),
        ("DT_UINT32", "UINT32", np.uint32),
        ("DT_UINT64", "UINT64", np.uint64),
        ("DT_BOOL", "BOOL", np.bool_),
        ("DT_STRING", "BYTES", object),
    ],
)
def test_round_trips_between_names(tf_name: str, triton: str, np_dtype: type) -> None:
    assert dtypes.triton_datatype(tf_name) == triton
    assert dtypes.from_triton(triton).tf_name == tf_name
    assert dtypes.numpy_dtype(tf_name) == np.dtype(np_dtype)
    assert dtypes.from_numpy(np.dtype(np_dtype)).tf_name == tf_name


def test_bfloat16() -> None:
    assert dtypes.triton_datatype("DT_BFLOAT16") == "BF16"
    assert dtypes.numpy_dtype("DT_BFLOAT16").name == "bfloat16"


@pytest.mark.parametrize("np_dtype", ["U3", "S3", object])
def test_text_arrays_are_strings(np_dtype: str) -> None:
    assert dtypes.from_numpy(np.dtype(np_dtype)).tf_name == "DT_STRING"


def test_unknowns_are_invalid_argument() -> None:
    for call, arg in [
        (dtypes.tf_type, "DT_RESOURCE"),
        (dtypes.from_triton, "FP8"),
        (dtypes.triton_datatype, "DT_COMPLEX64"),
    ]:
        with pytest.raises(ServingError):
            call(arg)
    with pytest.raises(ServingError):
        dtypes.from_numpy(np.dtype("datetime64[s]"))
    assert dtypes.tf_string("DT_RESOURCE") == "resource"
