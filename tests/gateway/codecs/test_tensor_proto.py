"""TensorProto <-> numpy, cross-checked against ``tf.make_tensor_proto`` / ``tf.make_ndarray``."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from gateway.codecs.tensor_proto import (
    check_dtype,
    decode_predict_inputs,
    ndarray_to_tensor_proto,
    tensor_proto_to_ndarray,
)
from tests.support.signatures import spec
from tfsgate.core.protos import tensor_pb2, types_pb2
from tfsgate.core.signatures import SignatureSpec
from tfsgate.core.status import Code, ServingError

ARRAYS = [
    np.array([[1.5, 2.0], [3.25, -4.0]], dtype=np.float32),
    np.array([0.1, 1e300, -0.0], dtype=np.float64),
    np.array([[1, -2, 3]], dtype=np.int32),
    np.array([1, 255, 7], dtype=np.uint8),
    np.array([-128, 127], dtype=np.int8),
    np.array([-32768, 32767], dtype=np.int16),
    np.array([0, 65535], dtype=np.uint16),
    np.array([2**40, -(2**62)], dtype=np.int64),
    np.array([2**32 - 1, 0], dtype=np.uint32),
    np.array([2**64 - 1, 1], dtype=np.uint64),
    np.array([True, False, True], dtype=np.bool_),
    np.array([1.5, -2.25, 65504.0], dtype=np.float16),
    np.array([1 + 2j, -3.5j], dtype=np.complex64),
    np.array([1 + 2j], dtype=np.complex128),
    np.array(3.5, dtype=np.float32),  # scalar: empty dim list
    np.zeros((2, 0, 3), dtype=np.float32),
]


def _ids(array: np.ndarray) -> str:
    return f"{array.dtype}{list(array.shape)}"


@pytest.mark.parametrize("array", ARRAYS, ids=_ids)
@pytest.mark.parametrize("use_tensor_content", [False, True])
def test_round_trip_and_tensorflow_reads_ours(
    tf: ModuleType, array: np.ndarray, use_tensor_content: bool
) -> None:
    proto = ndarray_to_tensor_proto(array, use_tensor_content=use_tensor_content)
    decoded = tensor_proto_to_ndarray(proto, "x")
    assert decoded.dtype == array.dtype and decoded.shape == array.shape
    np.testing.assert_array_equal(decoded, array)
    np.testing.assert_array_equal(tf.make_ndarray(proto), array)
    assert not use_tensor_content or not array.size or proto.tensor_content
    assert use_tensor_content or not proto.tensor_content


@pytest.mark.parametrize("array", ARRAYS, ids=_ids)
def test_we_read_tensorflows_protos(tf: ModuleType, array: np.ndarray) -> None:
    proto = tf.make_tensor_proto(array)  # tensor_content for most types, typed fields for some
    decoded = tensor_proto_to_ndarray(tensor_pb2.TensorProto.FromString(proto.SerializeToString()))
    np.testing.assert_array_equal(decoded, array)
    assert decoded.shape == array.shape


def test_default_answer_uses_typed_fields_like_tf_serving() -> None:
    proto = ndarray_to_tensor_proto(np.array([[2.5], [3.0]], dtype=np.float32))
    assert list(proto.float_val) == [2.5, 3.0]
    assert [d.size for d in proto.tensor_shape.dim] == [2, 1]
    assert proto.dtype == types_pb2.DT_FLOAT


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [1, 7, 1024, 40_000])
def test_float_fields_written_from_bytes_equal_field_by_field(dtype: str, size: int) -> None:
    """float_val/double_val are filled by parsing the array's packed bytes: the message equals,
    byte for byte, one filled a Python float at a time (NaN, infinities, -0.0, subnormals;
    lengths whose varint takes 1 to 3 bytes)."""
    rng = np.random.default_rng(size)
    values = rng.standard_normal((size,)) * 10.0 ** rng.integers(-40, 38, size)
    values[: min(size, 6)] = [np.nan, np.inf, -np.inf, -0.0, 1e-45, 3.0][: min(size, 6)]
    array = values.astype(dtype).reshape(1, size)
    proto = ndarray_to_tensor_proto(array)
    expected = tensor_pb2.TensorProto(dtype=proto.dtype)
    expected.tensor_shape.CopyFrom(proto.tensor_shape)
    field = expected.float_val if np.dtype(dtype).itemsize == 4 else expected.double_val
    field.extend(array.ravel().tolist())
    assert proto.SerializeToString() == expected.SerializeToString()
    assert not proto.tensor_content


def test_bfloat16_round_trip(tf: ModuleType) -> None:
    import ml_dtypes

    array = np.array([1.5, -2.0, 3.0], dtype=ml_dtypes.bfloat16)
    proto = ndarray_to_tensor_proto(array)
    assert proto.dtype == types_pb2.DT_BFLOAT16
    np.testing.assert_array_equal(tensor_proto_to_ndarray(proto), array)
    np.testing.assert_array_equal(tf.make_ndarray(proto).astype(np.float32), [1.5, -2.0, 3.0])


@pytest.mark.parametrize(
    "values", [[b"a", b"bc"], ["caf\u00e9", "x"], [b"\x00\xff", b""]], ids=["bytes", "str", "bin"]
)
def test_strings_always_use_string_val(tf: ModuleType, values: list[object]) -> None:
    array = np.array(values, dtype=object)
    proto = ndarray_to_tensor_proto(array, use_tensor_content=True)
    assert not proto.tensor_content and len(proto.string_val) == 2
    expected = [v.encode() if isinstance(v, str) else v for v in values]
    assert tensor_proto_to_ndarray(proto).tolist() == expected
    assert tf.make_ndarray(proto).tolist() == expected


def test_unicode_numpy_array_is_encoded_as_utf8() -> None:
    proto = ndarray_to_tensor_proto(np.array(["ab", "\u00e9"]))
    assert proto.dtype == types_pb2.DT_STRING
    assert list(proto.string_val) == [b"ab", "\u00e9".encode()]


def test_tensor_content_is_a_zero_copy_view() -> None:
    content = np.arange(6, dtype=np.float32).tobytes()
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_content=content)
    proto.tensor_shape.dim.add(size=2)
    proto.tensor_shape.dim.add(size=3)
    array = tensor_proto_to_ndarray(proto)
    assert array.shape == (2, 3) and not array.flags.writeable
    np.testing.assert_array_equal(array.ravel(), np.arange(6))


def _proto(dtype: int, dims: list[int], **fields: object) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto(dtype=dtype, **fields)  # type: ignore[arg-type]
    for size in dims:
        proto.tensor_shape.dim.add(size=size)
    return proto


@pytest.mark.parametrize(
    ("proto", "expected"),
    [
        (_proto(types_pb2.DT_FLOAT, [4], float_val=[7.0]), [7.0, 7.0, 7.0, 7.0]),
        (_proto(types_pb2.DT_FLOAT, [3], float_val=[1.0, 2.0]), [1.0, 2.0, 2.0]),
        (_proto(types_pb2.DT_FLOAT, [2], float_val=[1.0, 2.0, 3.0]), [1.0, 2.0]),
        (_proto(types_pb2.DT_FLOAT, [3]), [0.0, 0.0, 0.0]),
        (_proto(types_pb2.DT_INT64, [3], int64_val=[5]), [5, 5, 5]),
        (_proto(types_pb2.DT_STRING, [3], string_val=[b"a"]), [b"a", b"a", b"a"]),
        (_proto(types_pb2.DT_STRING, [2]), [b"", b""]),
        (_proto(types_pb2.DT_BOOL, [2], bool_val=[True]), [True, True]),
        (_proto(types_pb2.DT_UINT8, [2], int_val=[300, 2]), [44, 2]),  # int32 on the wire, cast
        (_proto(types_pb2.DT_DOUBLE, [], double_val=[2.5]), 2.5),
        (
            tensor_pb2.TensorProto(
                dtype=types_pb2.DT_FLOAT, tensor_shape={"unknown_rank": True}, float_val=[3.0]
            ),
            3.0,
        ),
    ],
    ids=[
        "repeat-one",
        "repeat-last",
        "truncate",
        "zeros",
        "int64",
        "str",
        "str-empty",
        "bool",
        "uint8-cast",
        "scalar",
        "unknown-rank-scalar",
    ],
)
def test_typed_field_fill_rules_match_tensorflow(
    tf: ModuleType, proto: tensor_pb2.TensorProto, expected: object
) -> None:
    decoded = tensor_proto_to_ndarray(proto, "x")
    assert decoded.tolist() == expected
    # tf.io.parse_tensor runs C++ Tensor::FromProto, the code TF Serving uses.
    parsed = tf.io.parse_tensor(proto.SerializeToString(), tf.dtypes.as_dtype(proto.dtype))
    assert parsed.numpy().tolist() == expected


@pytest.mark.parametrize(
    "proto",
    [
        _proto(types_pb2.DT_FLOAT, [3], tensor_content=b"\x00" * 8),  # wrong byte count
        _proto(types_pb2.DT_FLOAT, [-1], float_val=[1.0]),  # negative dim
        _proto(types_pb2.DT_INVALID, [1]),
        _proto(types_pb2.DT_RESOURCE, [1]),
        _proto(types_pb2.DT_FLOAT, [2**40, 2**30], float_val=[1.0]),  # > 2^63 elements
        _proto(types_pb2.DT_FLOAT, [1] * 255, float_val=[1.0]),  # TF's rank limit is 254
    ],
    ids=["content-size", "negative-dim", "invalid-type", "resource", "overflow", "rank-255"],
)
def test_unparseable_protos(tf: ModuleType, proto: tensor_pb2.TensorProto) -> None:
    if proto.dtype == types_pb2.DT_FLOAT:
        with pytest.raises(tf.errors.InvalidArgumentError):
            tf.io.parse_tensor(proto.SerializeToString(), tf.float32)
    with pytest.raises(ServingError) as caught:
        tensor_proto_to_ndarray(proto, "x")
    assert caught.value.code is Code.INVALID_ARGUMENT
    assert caught.value.message == "tensor parsing error: x"


@pytest.mark.parametrize(
    "proto",
    [
        _proto(types_pb2.DT_HALF, [2**31, 4], half_val=[1]),  # one value standing for 2^33
        _proto(types_pb2.DT_STRING, [2**40]),  # no values at all: 2^40 empty strings
        _proto(types_pb2.DT_FLOAT, [2**63 - 1, 0]),  # no elements, but not an array numpy has
    ],
    ids=["half-fill", "string-fill", "empty-huge"],
)
def test_tensors_the_gateway_will_not_allocate(proto: tensor_pb2.TensorProto) -> None:
    """A few bytes that would expand to gigabytes: TF fails the allocation, the gateway refuses
    before trying (it was OOM-killed by such a request)."""
    with pytest.raises(ServingError) as caught:
        tensor_proto_to_ndarray(proto, "x")
    assert (caught.value.code, caught.value.message) == (
        Code.INVALID_ARGUMENT,
        "tensor parsing error: x",
    )


def test_fills_up_to_the_limit_still_decode() -> None:
    proto = _proto(types_pb2.DT_FLOAT, [1024, 1024], float_val=[2.0])
    assert tensor_proto_to_ndarray(proto, "x").sum() == 2.0 * 1024 * 1024


def _two_inputs() -> SignatureSpec:
    return SignatureSpec("s", "tensorflow/serving/predict", {"a": spec("a"), "b": spec("b")}, {})


def test_decode_predict_inputs() -> None:
    arrays = decode_predict_inputs(
        {
            "a": ndarray_to_tensor_proto(np.ones((2, 1), np.float32)),
            "b": ndarray_to_tensor_proto(np.zeros((2, 1), np.float32), use_tensor_content=True),
        },
        _two_inputs(),
    )
    assert {k: v.shape for k, v in arrays.items()} == {"a": (2, 1), "b": (2, 1)}


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            {"a": np.ones(1, np.float32)},
            "input size does not match signature: 1!=2 len({a}) != len({a,b}). "
            "Sent extra: {}. Missing but required: {b}.",
        ),
        (
            {"a": np.ones(1, np.float32), "b": np.ones(1, np.float32), "c": np.ones(1)},
            "input size does not match signature: 3!=2 len({a,b,c}) != len({a,b}). "
            "Sent extra: {c}. Missing but required: {}.",
        ),
        (
            {"a": np.ones(1, np.float32), "z": np.ones(1, np.float32)},
            "input tensor alias not found in signature: z. Inputs expected to be in the set {a,b}.",
        ),
        (
            {"a": np.ones(1, np.float32), "b": np.array([b"s"], dtype=object)},
            "Expects arg[1] to be float but string is provided",
        ),
        (
            {"a": np.ones(1, np.float64), "b": np.ones(1, np.float32)},
            "Expects arg[0] to be float but double is provided",
        ),
    ],
    ids=["missing", "extra", "unknown", "string-for-float", "double-for-float"],
)
def test_decode_predict_inputs_errors(inputs: dict[str, np.ndarray], message: str) -> None:
    protos = {k: ndarray_to_tensor_proto(v) for k, v in inputs.items()}
    with pytest.raises(ServingError) as caught:
        decode_predict_inputs(protos, _two_inputs())
    assert (caught.value.code, caught.value.message) == (Code.INVALID_ARGUMENT, message)


def test_check_dtype_names_types_like_tensorflow() -> None:
    with pytest.raises(ServingError, match=r"Expects arg\[2\] to be int64 but half is provided"):
        check_dtype(types_pb2.DT_HALF, spec("k", "DT_INT64"), 2)
    check_dtype(types_pb2.DT_INT64, spec("k", "DT_INT64"), 0)
