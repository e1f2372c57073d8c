"""One table of tensor element types: TF ``DataType``, numpy, Triton datatype and config type.

TF strings (``DT_STRING``) are numpy ``object`` arrays of ``bytes``, Triton ``BYTES`` on the wire and
``TYPE_STRING`` in a model config; Triton has no complex types.
``DT_HALF`` is ``float16``/``FP16``; ``DT_BFLOAT16`` is ``ml_dtypes.bfloat16``/``BF16`` when
ml_dtypes is installed (it comes with TensorFlow's wheels, but is not TensorFlow and imports in
milliseconds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfsgate.core.protos import types_pb2
from tfsgate.core.status import invalid_argument

try:  # bfloat16 has no numpy dtype of its own.
    import ml_dtypes

    _BFLOAT16: np.dtype | None = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - ml_dtypes ships with the TensorFlow wheels
    _BFLOAT16 = None


@dataclass(frozen=True)
class DType:
    """One element type as every layer spells it."""

    tf_name: str  # DataType enum name, e.g. "DT_FLOAT"
    tf_enum: int  # DataType enum value
    tf_string: str  # TF's DataTypeString, used in its error messages, e.g. "float"
    numpy: np.dtype | None  # None: no numpy dtype available (bfloat16 without ml_dtypes)
    triton: str | None  # Triton datatype, None when Triton has no such type (complex)
    proto_field: str  # TensorProto repeated field holding values, e.g. "float_val"

    @property
    def config_type(self) -> str | None:
        """Triton ``ModelConfig`` ``DataType`` name ("TYPE_FP32"); None when Triton has none."""
        if self.triton is None:
            return None
        return "TYPE_STRING" if self.triton == "BYTES" else f"TYPE_{self.triton}"


def _d(name: str, tf_string: str, np_dtype: object, triton: str | None, field: str) -> DType:
    numpy_dtype = None if np_dtype is None else np.dtype(np_dtype)  # type: ignore[call-overload]
    return DType(name, types_pb2.DataType.Value(name), tf_string, numpy_dtype, triton, field)


DTYPES: tuple[DType, ...] = (
    _d("DT_FLOAT", "float", np.float32, "FP32", "float_val"),
    _d("DT_DOUBLE", "double", np.float64, "FP64", "double_val"),
    _d("DT_INT32", "int32", np.int32, "INT32", "int_val"),
    _d("DT_UINT8", "uint8", np.uint8, "UINT8", "int_val"),
    _d("DT_INT16", "int16", np.int16, "INT16", "int_val"),
    _d("DT_INT8", "int8", np.int8, "INT8", "int_val"),
    _d("DT_STRING", "string", np.object_, "BYTES", "string_val"),
    _d("DT_COMPLEX64", "complex64", np.complex64, None, "scomplex_val"),
    _d("DT_INT64", "int64", np.int64, "INT64", "int64_val"),
    _d("DT_BOOL", "bool", np.bool_, "BOOL", "bool_val"),
    _d("DT_BFLOAT16", "bfloat16", _BFLOAT16, "BF16", "half_val"),
    _d("DT_UINT16", "uint16", np.uint16, "UINT16", "int_val"),
    _d("DT_COMPLEX128", "complex128", np.complex128, None, "dcomplex_val"),
    _d("DT_HALF", "half", np.float16, "FP16", "half_val"),
    _d("DT_UINT32", "uint32", np.uint32, "UINT32", "uint32_val"),
    _d("DT_UINT64", "uint64", np.uint64, "UINT64", "uint64_val"),
)

BY_TF_NAME: dict[str, DType] = {d.tf_name: d for d in DTYPES}
BY_TF_ENUM: dict[int, DType] = {d.tf_enum: d for d in DTYPES}
BY_NUMPY: dict[np.dtype, DType] = {d.numpy: d for d in DTYPES if d.numpy is not None}


def tf_type(tf_name: str) -> DType:
    """The entry for a ``DT_*`` name; INVALID_ARGUMENT for types the gateway does not carry."""
    entry = BY_TF_NAME.get(tf_name)
    if entry is None:
        raise invalid_argument(f"Unsupported tensor type: {tf_name}")
    return entry


def tf_string(tf_name: str) -> str:
    """TF's ``DataTypeString`` ("float" for DT_FLOAT), falling back to the enum name."""
    entry = BY_TF_NAME.get(tf_name)
    if entry is not None:
        return entry.tf_string
    return tf_name[3:].lower() if tf_name.startswith("DT_") else tf_name


def numpy_dtype(tf_name: str) -> np.dtype:
    """numpy dtype for a ``DT_*`` name (``object`` for DT_STRING)."""
    entry = tf_type(tf_name)
    if entry.numpy is None:
        raise invalid_argument(f"Unsupported tensor type: {tf_name}")
    return entry.numpy


def from_numpy(dtype: np.dtype | type) -> DType:
    """Entry for a numpy dtype; unicode and bytes arrays count as DT_STRING, as in TF."""
    resolved = np.dtype(dtype)
    if resolved.kind in ("U", "S", "O"):
        return BY_TF_NAME["DT_STRING"]
    entry = BY_NUMPY.get(resolved)
    if entry is None:
        raise invalid_argument(f"Unsupported numpy dtype: {resolved}")
    return entry
