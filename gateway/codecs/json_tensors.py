"""TF Serving's REST JSON <-> tensors: one JSON value as a numpy array, and back.

Semantics and error texts follow ``tensorflow_serving/util/json_tensor.cc`` (``FillTensorProto``,
``AddValueToTensor``, ``MakeJsonFromTensors``). Values are turned into numpy arrays with bulk
conversions; element-by-element validation runs only when the bulk path finds something wrong, so
that the error names the first offending value exactly as TF Serving would. Strings travel as UTF-8
text or ``{"b64": ...}`` objects.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

import numpy as np
import orjson

from gateway.codecs.jsontext import (
    FLT_MAX,
    SMALL,
    float_json,
    json_type_string,
    value_to_string,
)
from tfsgate.core import dtypes
from tfsgate.core.status import Code, ServingError, invalid_argument

_B64 = "b64"
_BYTES_SUFFIX = "_bytes"
# The largest ints a float/double holds exactly.
MAX_EXACT_INT = {"float": 2**24 - 1, "double": 2**53 - 1}


# =========================================================================== base64 and objects


def is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(_B64), str)


def is_named_object(value: Any) -> bool:
    return isinstance(value, dict) and not is_b64(value)


def b64decode(value: dict[str, Any]) -> bytes:
    """Standard base64 (padding optional, like absl's ``Base64Unescape``)."""
    text = value[_B64]
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise invalid_argument("Unable to base64 decode") from None


# =========================================================================== leaves


def _is_json_int(value: Any) -> bool:
    return type(value) is int


def _type_error(value: Any, tf_name: str) -> ServingError:
    return invalid_argument(
        f"JSON Value: {value_to_string(value)} Type: {json_type_string(value)} "
        f"is not of expected type: {dtypes.tf_string(tf_name)}"
    )


def lossy_error(value: Any, target: str) -> ServingError:
    return invalid_argument(
        f"Cannot convert JSON value: {value_to_string(value)} to {target} "
        "without loss of precision."
    )


def _check_decimal(value: Any, tf_name: str, target: str) -> float:
    if type(value) not in (int, float):
        raise _type_error(value, tf_name)
    if isinstance(value, int):
        if abs(value) > MAX_EXACT_INT[target]:
            raise lossy_error(value, target)
        return float(value)
    if target == "float" and math.isfinite(value) and abs(value) > FLT_MAX:
        raise lossy_error(value, target)
    return value


def _check_int(value: Any, tf_name: str, low: int, high: int) -> int:
    if not _is_json_int(value) or not low <= value <= high:
        raise _type_error(value, tf_name)
    return int(value)


_INT_RANGES = {
    "DT_INT32": (-(2**31), 2**31 - 1),
    "DT_INT16": (-(2**31), 2**31 - 1),  # TF reads int_val (int32) and casts
    "DT_INT8": (-(2**31), 2**31 - 1),
    "DT_UINT8": (-(2**31), 2**31 - 1),
    "DT_INT64": (-(2**63), 2**63 - 1),
    "DT_UINT32": (0, 2**32 - 1),
    "DT_UINT64": (0, 2**64 - 1),
}


def _leaf(value: Any, tf_name: str) -> Any:
    """One scalar of a tensor, validated like ``FillTensorProto``/``AddValueToTensor``."""
    if isinstance(value, dict):
        if tf_name != "DT_STRING":
            raise _type_error(value, tf_name)
        if not is_b64(value):
            raise invalid_argument(
                f"JSON Value: {value_to_string(value)} not formatted correctly for base64 data"
            )
        return b64decode(value)
    if tf_name == "DT_FLOAT":
        return _check_decimal(value, tf_name, "float")
    if tf_name == "DT_DOUBLE":
        return _check_decimal(value, tf_name, "double")
    if tf_name in _INT_RANGES:
        return _check_int(value, tf_name, *_INT_RANGES[tf_name])
    if tf_name == "DT_BOOL":
        if not isinstance(value, bool):
            raise _type_error(value, tf_name)
        return value
    if tf_name == "DT_STRING":
        if not isinstance(value, str):
            raise _type_error(value, tf_name)
        return value.encode("utf-8")
    raise ServingError(
        Code.UNIMPLEMENTED,
        f"Conversion of JSON Value: {value_to_string(value)} to type: {dtypes.tf_string(tf_name)}",
    )


# =========================================================================== dense tensors


class _Slow(Exception):
    """The bulk path met something it does not validate itself: redo element by element."""


def _dense_shape(value: Any) -> list[int]:
    """``GetDenseTensorShape``: the shape implied by following first elements."""
    shape: list[int] = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


_BULK_TYPES: dict[str, frozenset[type]] = {
    "DT_FLOAT": frozenset((int, float)),
    "DT_DOUBLE": frozenset((int, float)),
    "DT_BOOL": frozenset((bool,)),
    "DT_STRING": frozenset((str,)),
    **{name: frozenset((int,)) for name in _INT_RANGES},
}


def _walk(
    value: Any, level: int, shape: list[int], tf_name: str, flat: list[Any], bulk: bool
) -> None:
    """``FillTensorProto``: check nesting against ``shape`` and collect leaves into ``flat``.

    With ``bulk`` the innermost lists are appended whole after a type-set check (values are checked
    later by ``_to_array``); without it every leaf is validated in document order.
    """
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise invalid_argument(
                f"JSON Value: {value_to_string(value)} found at incorrect level: {level + 1} "
                f"in the JSON DOM. Expected at level: {rank}"
            )
        flat.append(_leaf(value, tf_name))
        return
    if level >= rank:
        raise invalid_argument(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise invalid_argument(
            f"Encountered list at unexpected size: {len(value)} at level: {level} "
            f"expected size: {shape[level]}"
        )
    if bulk and level == rank - 1:
        if not set(map(type, value)) <= _BULK_TYPES.get(tf_name, frozenset()):
            raise _Slow
        flat.extend(value)
        return
    for item in value:
        _walk(item, level + 1, shape, tf_name, flat, bulk)


def _to_array(flat: list[Any], shape: list[int], tf_name: str) -> np.ndarray:
    """Bulk conversion of collected leaves; ``_Slow`` on any value it would have to reject."""
    np_dtype = dtypes.numpy_dtype(tf_name)
    if tf_name == "DT_STRING":
        out = np.empty(len(flat), dtype=object)
        out[:] = [v.encode("utf-8") if type(v) is str else v for v in flat]
        return out.reshape(shape)
    if not flat:
        return np.empty(shape, dtype=np_dtype)
    if tf_name in ("DT_FLOAT", "DT_DOUBLE"):
        return _decimals_to_array(flat, tf_name, np_dtype).reshape(shape)
    if tf_name in _INT_RANGES:
        return _ints_to_array(flat, tf_name, np_dtype).reshape(shape)
    if tf_name == "DT_BOOL":
        return np.array(flat, dtype=np.bool_).reshape(shape)
    raise _Slow


def _decimals_to_array(flat: list[Any], tf_name: str, np_dtype: np.dtype) -> np.ndarray:
    target = "float" if tf_name == "DT_FLOAT" else "double"
    if len(flat) <= SMALL:  # the same checks one by one: cheaper than numpy's for a few values
        limit = MAX_EXACT_INT[target]
        for value in flat:
            if type(value) is int:
                if abs(value) > limit:
                    raise _Slow
            elif target == "float" and abs(value) > FLT_MAX and math.isfinite(value):
                raise _Slow
        return np.array(flat, dtype=np.float64).astype(np_dtype)
    try:
        wide = np.array(flat, dtype=np.float64)
    except OverflowError:
        raise _Slow from None
    magnitude = np.abs(wide)
    if magnitude.max() <= MAX_EXACT_INT[target]:  # the usual input: nothing to look at (NaN: False)
        return wide.astype(np_dtype)
    if target == "float" and bool((np.isfinite(wide) & (magnitude > FLT_MAX)).any()):
        raise _Slow
    for index in np.flatnonzero(magnitude > MAX_EXACT_INT[target]).tolist():
        if type(flat[index]) is int:
            raise _Slow
    return wide.astype(np_dtype)


def _ints_to_array(flat: list[Any], tf_name: str, np_dtype: np.dtype) -> np.ndarray:
    low, high = _INT_RANGES[tf_name]
    if tf_name == "DT_UINT64" and min(flat) < 0:  # numpy would wrap negatives silently
        raise _Slow
    try:
        wide = np.array(flat, dtype=np.uint64 if tf_name == "DT_UINT64" else np.int64)
    except OverflowError:
        raise _Slow from None
    if tf_name != "DT_UINT64" and bool(((wide < low) | (wide > high)).any()):
        raise _Slow
    return wide.astype(np_dtype)


def _exact_array(flat: list[Any], shape: list[int], tf_name: str) -> np.ndarray:
    """Array from leaves ``_leaf`` already validated and converted."""
    np_dtype = dtypes.numpy_dtype(tf_name)
    if tf_name == "DT_STRING":
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out.reshape(shape)
    if tf_name in _INT_RANGES and tf_name != "DT_UINT64":
        return np.array(flat, dtype=np.int64).astype(np_dtype).reshape(shape)
    return np.array(flat, dtype=np_dtype).reshape(shape)


def small_floats(value: Any, tf_name: str) -> np.ndarray | None:
    """``dense_to_array`` in one pass for what online requests send: a vector or matrix of at most
    ``SMALL`` JSON numbers written with a point or exponent, within float32's range for a float
    input. None for anything else (ints, bools, strings, ragged or deeper lists, NaN, Infinity,
    overflow): the general path decides. Same values as the bulk path (each double rounded once
    to the type)."""
    if tf_name == "DT_FLOAT":
        limit = FLT_MAX
    elif tf_name == "DT_DOUBLE":
        limit = math.inf
    else:
        return None
    if type(value) is not list or not value or len(value) > SMALL:
        return None
    rows: list[Any] | tuple[list[Any]] = value  # a matrix's rows, or the vector as one row
    if type(value[0]) is list:
        width = len(value[0])
        if not width or width * len(value) > SMALL:
            return None
    else:
        rows, width = (value,), len(value)
    for row in rows:
        if type(row) is not list or len(row) != width:
            return None
        for number in row:
            if type(number) is not float or not -limit <= number <= limit:
                return None
    # Each number is a double; numpy rounds it to float32 straight from it, as astype does.
    return np.array(value, dtype=np.float32 if tf_name == "DT_FLOAT" else np.float64)


def dense_to_array(value: Any, tf_name: str) -> np.ndarray:
    """One JSON value (scalar or nested lists) as a tensor of ``tf_name``, TF's rules and errors."""
    fast = small_floats(value, tf_name)
    if fast is not None:
        return fast
    shape = _dense_shape(value)
    flat: list[Any] = []
    try:
        _walk(value, 0, shape, tf_name, flat, bulk=True)
        return _to_array(flat, shape, tf_name)
    except _Slow:
        flat = []
        _walk(value, 0, shape, tf_name, flat, bulk=False)
        return _exact_array(flat, shape, tf_name)


# =========================================================================== tensors out


_BFLOAT16 = dtypes.BY_TF_NAME["DT_BFLOAT16"].numpy


def tensor_fragment(array: np.ndarray | np.generic, name: str) -> orjson.Fragment:
    """The JSON text of one tensor (nested lists, or a bare scalar for rank 0)."""
    array = np.asarray(array)
    kind = array.dtype.kind
    if kind == "f" or array.dtype == _BFLOAT16:
        return orjson.Fragment(float_json(array))
    if kind in "iub":
        if array.ndim == 0:
            return orjson.Fragment(orjson.dumps(array.item()))
        return orjson.Fragment(
            orjson.dumps(np.ascontiguousarray(array), option=orjson.OPT_SERIALIZE_NUMPY)
        )
    if kind in "OSU":
        return orjson.Fragment(orjson.dumps(_strings_tree(array, name.endswith(_BYTES_SUFFIX))))
    entry = dtypes.BY_NUMPY.get(array.dtype)
    shown = entry.tf_string if entry else str(array.dtype)
    raise invalid_argument(f"Failed to write JSON value for tensor type: {shown}")


def _strings_tree(array: np.ndarray, as_b64: bool) -> Any:
    """Nested lists of text (UTF-8; invalid bytes replaced) or of ``{"b64": ...}`` objects."""
    flat = array.ravel().tolist()
    if as_b64:
        values: list[Any] = [{_B64: base64.b64encode(_bytes_of(v)).decode("ascii")} for v in flat]
    else:
        values = [_bytes_of(v).decode("utf-8", "replace") for v in flat]
    holder = np.empty(len(values), dtype=object)
    holder[:] = values
    return holder.reshape(array.shape).tolist()


def _bytes_of(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")
