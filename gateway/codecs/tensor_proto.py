"""``TensorProto`` <-> numpy, with TF's parsing rules and a zero-copy ``tensor_content`` path.

Reading follows ``Tensor::FromProto``: ``tensor_content`` must hold exactly the tensor's bytes;
else the typed ``*_val`` field is used, where no values means zeros, fewer values than elements
repeat the last value, and extra values are ignored. Writing defaults to the typed fields, which is
what TF Serving answers with (``Tensor::AsProtoField``) and what clients read
(``outputs['y'].float_val``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tfsgate.core import dtypes
from tfsgate.core.protos import tensor_pb2, tensor_shape_pb2
from tfsgate.core.signatures import SignatureSpec, TensorSpec
from tfsgate.core.status import invalid_argument

_HALF_TYPES = ("DT_HALF", "DT_BFLOAT16")
MAX_DIMS = 254  # TensorShape::MaxDimensions()
MAX_ELEMENTS = 2**63 - 1  # TensorShape::IsValid: the element count must fit in int64
# Typed values fewer than the elements are repeated (TF's rule), so a tiny proto can stand for a
# huge tensor. TF then fails to allocate it ("tensor parsing error"); the gateway refuses past
# this size instead of trying (measured: a 2^33-element fill had the kernel OOM-kill the server).
MAX_EXPANDED_BYTES = 256 << 20
_COMPLEX_TYPES = ("DT_COMPLEX64", "DT_COMPLEX128")
# float_val and double_val are packed fixed-width fields: their wire bytes are the array's
# little-endian bytes, so parsing those bytes fills the field in C instead of a Python float per
# element (a 1024-float answer: ~55 -> ~7 us). Keyed by TF type: (wire tag, little-endian dtype).
_PACKED = {
    name: (bytes([tensor_pb2.TensorProto.DESCRIPTOR.fields_by_name[field].number << 3 | 2]), dtype)
    for name, field, dtype in (("DT_FLOAT", "float_val", "<f4"), ("DT_DOUBLE", "double_val", "<f8"))
}


def _parse_error(alias: str) -> Exception:
    return invalid_argument(f"tensor parsing error: {alias}")


def proto_shape(shape: tensor_shape_pb2.TensorShapeProto) -> tuple[int, ...] | None:
    """The dims, or None when one is negative. ``unknown_rank`` is ignored, as ``FromProto`` does
    (an unknown-rank proto with no dims is read as a scalar)."""
    # A slice, not the container itself: upb's repeated containers have no __iter__, so a loop
    # over one ends on the IndexError of its __getitem__ (an exception per request).
    dims = tuple([d.size for d in shape.dim[:]])
    if dims and min(dims) < 0:
        return None
    return dims


def tensor_proto_to_ndarray(proto: tensor_pb2.TensorProto, alias: str = "") -> np.ndarray:
    """Decode one TensorProto like ``Tensor::FromProto`` ("tensor parsing error: alias")."""
    entry = dtypes.BY_TF_ENUM.get(proto.dtype)
    shape = proto_shape(proto.tensor_shape)
    if entry is None or entry.numpy is None or shape is None or len(shape) > MAX_DIMS:
        raise _parse_error(alias)
    count = math.prod(shape)
    if count > MAX_ELEMENTS:
        raise _parse_error(alias)
    if proto.tensor_content and entry.tf_name != "DT_STRING":
        return _from_content(proto.tensor_content, entry.numpy, shape, count, alias)
    if count == 0:
        try:
            return np.empty(shape, dtype=entry.numpy)
        except ValueError:  # e.g. [2^63-1, 0]: numpy cannot state it even empty
            raise _parse_error(alias) from None
    given = len(getattr(proto, entry.proto_field))
    if given < count and count * entry.numpy.itemsize > MAX_EXPANDED_BYTES:
        raise _parse_error(alias)
    if entry.tf_name == "DT_STRING":
        values = np.empty(count, dtype=object)
        values[:] = _fill(list(proto.string_val), count, b"")
        return values.reshape(shape)
    return _from_typed_field(proto, entry, count).reshape(shape)


def _from_content(
    content: bytes, dtype: np.dtype, shape: tuple[int, ...], count: int, alias: str
) -> np.ndarray:
    """Zero-copy view of ``tensor_content`` (read-only; it shares the request's buffer)."""
    if len(content) != count * dtype.itemsize:
        raise _parse_error(alias)
    return np.frombuffer(content, dtype=dtype).reshape(shape)


def _fill(values: Sequence[Any], count: int, zero: Any) -> Sequence[Any]:
    """TF's rule for short value lists: none: zeros, fewer: repeat the last, more: truncate."""
    have = len(values)
    if have == 0:
        return [zero] * count
    if have >= count:
        return values[:count]
    return list(values) + [values[-1]] * (count - have)


def _from_typed_field(proto: tensor_pb2.TensorProto, entry: dtypes.DType, count: int) -> np.ndarray:
    assert entry.numpy is not None
    field = getattr(proto, entry.proto_field)
    if entry.tf_name in _COMPLEX_TYPES:
        parts = np.asarray(field, dtype=np.float64)
        pairs = parts[: 2 * (len(parts) // 2)].reshape(-1, 2)
        raw = pairs[:, 0] + 1j * pairs[:, 1]
        return _broadcast_last(raw, count).astype(entry.numpy)
    if entry.tf_name in _HALF_TYPES:
        bits = np.asarray(field, dtype=np.int64).astype(np.uint16)
        return _broadcast_last(bits, count).view(entry.numpy)
    # np.fromiter, not np.asarray: asarray reads a protobuf repeated field as a generic sequence
    # (a quarter of a small Predict's decode, measured).
    if entry.proto_field == "int_val":  # int32 on the wire; narrower types truncate like TF's cast
        raw = np.fromiter(field, dtype=np.int64, count=len(field)).astype(entry.numpy)
    else:
        raw = np.fromiter(field, dtype=entry.numpy, count=len(field))
    return _broadcast_last(raw, count)


def _broadcast_last(raw: np.ndarray, count: int) -> np.ndarray:
    """``_fill`` for numpy arrays (no Python lists on the hot path)."""
    have = raw.shape[0]
    if have == 0:
        return np.zeros(count, dtype=raw.dtype)
    if have >= count:
        return raw if have == count else raw[:count]
    out = np.empty(count, dtype=raw.dtype)
    out[:have] = raw
    out[have:] = raw[-1]
    return out


def _head(
    array: np.ndarray, tf_dtype: str | None, into: tensor_pb2.TensorProto | None = None
) -> tuple[dtypes.DType, tensor_pb2.TensorProto]:
    """The TF type ``array`` is written as (``tf_dtype``, else its own), and ``into`` (or a new
    TensorProto) with that dtype and the array's shape."""
    entry = dtypes.tf_type(tf_dtype) if tf_dtype else dtypes.from_numpy(array.dtype)
    proto = tensor_pb2.TensorProto() if into is None else into
    proto.dtype = entry.tf_enum
    dims = proto.tensor_shape.dim
    for size in array.shape:
        dims.add(size=size)
    return entry, proto


def ndarray_to_tensor_proto(
    array: np.ndarray,
    use_tensor_content: bool = False,
    tf_dtype: str | None = None,
    into: tensor_pb2.TensorProto | None = None,
) -> tensor_pb2.TensorProto:
    """Encode an array. Typed ``*_val`` fields by default (TF Serving's ``AsProtoField``);
    ``use_tensor_content`` writes raw little-endian bytes instead. Strings always use
    ``string_val``. ``tf_dtype`` overrides the type inferred from the array (e.g. "DT_STRING").
    ``into``: an empty TensorProto inside the answer to fill in place (no copy of the tensor).
    """
    entry, proto = _head(array, tf_dtype, into)
    if entry.tf_name == "DT_STRING":
        proto.string_val.extend(_as_bytes(v) for v in np.asarray(array).ravel().tolist())
        return proto
    assert entry.numpy is not None
    typed = np.ascontiguousarray(array, dtype=entry.numpy)
    if use_tensor_content:
        proto.tensor_content = typed.astype(typed.dtype.newbyteorder("<"), copy=False).tobytes()
        return proto
    packed = _PACKED.get(entry.tf_name)
    if packed is not None and typed.size:
        raw = typed.astype(packed[1], copy=False).tobytes()
        proto.MergeFromString(packed[0] + _varint(len(raw)) + raw)
        return proto
    _write_typed_field(proto, entry, typed.ravel())
    return proto


# tensor_content's wire tag (field 4, length-delimited).
_CONTENT_TAG = bytes(
    [tensor_pb2.TensorProto.DESCRIPTOR.fields_by_name["tensor_content"].number << 3 | 2]
)
SPLICED_FROM = 64 << 10  # bytes of values: below this the answer is a proto like any other


def tensor_parts(
    array: np.ndarray, use_tensor_content: bool = False, tf_dtype: str | None = None
) -> list[bytes | memoryview] | None:
    """``ndarray_to_tensor_proto(...).SerializeToString()`` as parts, the values a view of the
    array; None unless its values are packed or tensor_content and at least SPLICED_FROM bytes.

    Through the proto, a megabyte of values is copied three times (``tobytes``, into the field,
    out again by serializing; four for packed floats, merged from their bytes): here once, when
    the caller joins the parts. The bytes are the proto's own: the dtype and shape serialized,
    then the values' field (the highest-numbered one set, where protobuf writes it)."""
    entry, head = _head(array, tf_dtype)
    if entry.numpy is None or entry.tf_name == "DT_STRING":
        return None
    if use_tensor_content:
        tag, wire = _CONTENT_TAG, np.dtype(entry.numpy).newbyteorder("<")
    elif entry.tf_name in _PACKED:
        tag, wire = _PACKED[entry.tf_name][0], np.dtype(_PACKED[entry.tf_name][1])
    else:
        return None
    if array.size * wire.itemsize < SPLICED_FROM:
        return None
    values = np.ascontiguousarray(np.asarray(array).astype(wire, copy=False))
    return [
        head.SerializeToString() + tag + _varint(values.nbytes),
        values.reshape(-1).view(np.uint8).data,
    ]


def length_delimited(tag: bytes, parts: list[bytes | memoryview]) -> list[bytes | memoryview]:
    """A length-delimited field of ``parts``: its tag and length, then the parts."""
    return [tag + _varint(sum(len(p) for p in parts)), *parts]


def _varint(value: int) -> bytes:
    """Protobuf's base-128 varint (a packed field's length)."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _write_typed_field(
    proto: tensor_pb2.TensorProto, entry: dtypes.DType, flat: np.ndarray
) -> None:
    field = getattr(proto, entry.proto_field)
    if entry.tf_name in _HALF_TYPES:
        field.extend(flat.view(np.uint16).astype(np.int32).tolist())
    elif entry.tf_name in _COMPLEX_TYPES:
        field.extend(np.stack([flat.real, flat.imag], axis=-1).ravel().tolist())
    else:
        field.extend(flat.tolist())


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return str(value).encode("utf-8")


def decode_predict_inputs(
    inputs: Mapping[str, tensor_pb2.TensorProto], signature: SignatureSpec
) -> dict[str, np.ndarray]:
    """A PredictRequest's ``inputs`` map as arrays, validated against the signature like TF Serving:
    input count and aliases (``PreProcessPrediction``), parsing (``Tensor::FromProto``) and dtypes
    (the session's "Expects arg[i] to be float but string is provided").
    """
    check_input_names(list(inputs), signature)
    arrays: dict[str, np.ndarray] = {}
    for index, (alias, proto) in enumerate(inputs.items()):
        spec = signature.inputs[alias]
        array = tensor_proto_to_ndarray(proto, alias)
        check_dtype(proto.dtype, spec, index)
        arrays[alias] = array
    return arrays


def check_input_names(request_inputs: list[str], signature: SignatureSpec) -> None:
    """TF Serving's input checks: count first ("input size does not match ..."), then aliases."""
    wanted = sorted(signature.inputs)
    sent = sorted(request_inputs)
    if len(sent) != len(wanted):
        extra = sorted(set(sent) - set(wanted))
        missing = sorted(set(wanted) - set(sent))
        raise invalid_argument(
            f"input size does not match signature: {len(sent)}!={len(wanted)} "
            f"len({{{','.join(sent)}}}) != len({{{','.join(wanted)}}}). "
            f"Sent extra: {{{','.join(extra)}}}. Missing but required: {{{','.join(missing)}}}."
        )
    for alias in request_inputs:
        if alias not in signature.inputs:
            raise invalid_argument(
                f"input tensor alias not found in signature: {alias}. "
                f"Inputs expected to be in the set {{{','.join(wanted)}}}."
            )


def check_dtype(proto_dtype: int, spec: TensorSpec, arg_index: int) -> None:
    """INVALID_ARGUMENT in the session's words when a fed tensor's type differs from the graph's."""
    entry = dtypes.BY_TF_ENUM.get(proto_dtype)
    given = entry.tf_name if entry else f"DT_{proto_dtype}"
    if given != spec.dtype:
        raise invalid_argument(
            f"Expects arg[{arg_index}] to be {dtypes.tf_string(spec.dtype)} but "
            f"{dtypes.tf_string(given)} is provided"
        )
