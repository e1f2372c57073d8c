"""Predict answers with large tensors serialized by hand (``grpc_convert.predict_answer``):
the bytes must be the PredictResponse protobuf writes for the same result."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from gateway import grpc_convert
from gateway.codecs.tensor_proto import SPLICED_FROM, tensor_parts
from gateway.types import PredictResult, ServedSpec
from tests.support.signatures import spec
from tfsgate.core import protos
from tfsgate.core.signatures import SignatureSpec

SERVED = ServedSpec("m", 7, "serving_default")
LARGE = SPLICED_FROM // 4 + 3  # float32 elements just past the threshold


def _result(outputs: dict[str, np.ndarray], dtypes: dict[str, str] | None = None) -> PredictResult:
    declared = {name: spec(name, dtype, (-1,)) for name, dtype in (dtypes or {}).items()}
    signature = SignatureSpec("serving_default", "tensorflow/serving/predict", {}, declared)
    return PredictResult(SERVED, outputs, signature)


def _both(result: PredictResult, tensor_content: bool) -> tuple[object, object]:
    answer = grpc_convert.predict_answer(result, result.signature.outputs, tensor_content)
    proto = grpc_convert.predict_response(result, result.signature.outputs, tensor_content)
    return answer, proto


RNG = np.random.default_rng(3)
CASES = [
    {"y": RNG.standard_normal((1, LARGE)).astype(np.float32)},
    {"y": RNG.standard_normal((3, 40, LARGE // 100)).astype(np.float64)},
    {"y": np.array([np.nan, -0.0, np.inf] * LARGE, np.float32)},
    {"probs": RNG.random((2, LARGE)).astype(np.float32), "ids": np.arange(5, dtype=np.int64)},
    {"ids": np.arange(LARGE, dtype=np.int64)},  # typed int64_val: not packed by hand
    {"half": RNG.random(LARGE * 2).astype(np.float16)},
    {"b16": RNG.random(LARGE * 2).astype(ml_dtypes.bfloat16)},
    {"flags": RNG.random(LARGE * 4) > 0.5},
]


@pytest.mark.parametrize(
    "outputs", CASES, ids=lambda c: "+".join(f"{k}:{v.dtype}" for k, v in c.items())
)
@pytest.mark.parametrize("tensor_content", [False, True])
def test_large_answers_are_protobufs_own_bytes(
    outputs: dict[str, np.ndarray], tensor_content: bool
) -> None:
    answer, proto = _both(_result(outputs), tensor_content)
    assert isinstance(answer, bytes)
    assert isinstance(proto, protos.predict_pb2.PredictResponse)
    parsed = protos.predict_pb2.PredictResponse.FromString(answer)
    assert parsed == proto
    if len(outputs) == 1:  # one map entry: protobuf's order is the only one
        assert answer == proto.SerializeToString()


def test_a_declared_dtype_converts_the_values_as_the_proto_does() -> None:
    doubles = RNG.standard_normal((2, LARGE)).astype(np.float64)
    for content in (False, True):
        answer, proto = _both(_result({"y": doubles}, {"y": "DT_FLOAT"}), content)
        assert isinstance(answer, bytes) and isinstance(proto, protos.predict_pb2.PredictResponse)
        assert answer == proto.SerializeToString()
        assert proto.outputs["y"].dtype == protos.types_pb2.DT_FLOAT


def test_small_answers_stay_protos() -> None:
    result = _result({"y": np.ones((4, 100), np.float32)})
    answer = grpc_convert.predict_answer(result, {}, False)
    assert isinstance(answer, protos.predict_pb2.PredictResponse)
    assert tensor_parts(np.ones(100, np.float32)) is None


def test_the_values_are_a_view_of_the_array_not_a_copy() -> None:
    array = RNG.standard_normal((1, LARGE)).astype(np.float32)
    parts = tensor_parts(array)
    assert parts is not None
    view = np.frombuffer(parts[1], np.float32)
    assert np.shares_memory(view, array)
    assert np.array_equal(view, array.ravel())
