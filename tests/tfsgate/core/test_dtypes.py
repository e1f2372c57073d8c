"""The element type table agrees with TensorFlow's own and with Triton's names."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
from tritonclient.grpc import model_config_pb2 as mc
from tritonclient.utils import np_to_triton_dtype

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
    entry = dtypes.tf_type(tf_name)
    assert entry.triton == triton
    # Triton's own pairing of wire datatype and config type (tritonclient's model_config proto).
    assert entry.config_type is not None
    assert mc.DataType.Value(entry.config_type) == mc.DataType.Value(
        "TYPE_STRING" if triton == "BYTES" else f"TYPE_{triton}"
    )
    assert np_to_triton_dtype(np.dtype(np_dtype)) == triton
    assert dtypes.numpy_dtype(tf_name) == np.dtype(np_dtype)
    assert dtypes.from_numpy(np.dtype(np_dtype)).tf_name == tf_name


def test_bfloat16() -> None:
    entry = dtypes.tf_type("DT_BFLOAT16")
    assert (entry.triton, entry.config_type) == ("BF16", "TYPE_BF16")
    assert dtypes.numpy_dtype("DT_BFLOAT16").name == "bfloat16"


def test_complex_has_no_triton_type() -> None:
    assert dtypes.tf_type("DT_COMPLEX64").config_type is None


@pytest.mark.parametrize("np_dtype", ["U3", "S3", object])
def test_text_arrays_are_strings(np_dtype: str) -> None:
    assert dtypes.from_numpy(np.dtype(np_dtype)).tf_name == "DT_STRING"


def test_unknowns_are_invalid_argument() -> None:
    for call, arg in [
        (dtypes.tf_type, "DT_RESOURCE"),
        (dtypes.numpy_dtype, "DT_VARIANT"),
    ]:
        with pytest.raises(ServingError):
            call(arg)
    with pytest.raises(ServingError):
        dtypes.from_numpy(np.dtype("datetime64[s]"))
    assert dtypes.tf_string("DT_RESOURCE") == "resource"
