"""tf.Examples from REST JSON and from gRPC Input: the bytes TensorFlow parses."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest

from gateway.codecs import tf_example
from tfsgate.core.protos import example_pb2, input_pb2
from tfsgate.core.status import Code, ServingError

PREDICT = "tensorflow/serving/predict"


def test_serialized_examples_parse_in_tensorflow(tf: ModuleType) -> None:
    examples = [
        {"f": 1.5, "i": 3, "s": "abc", "b": {"b64": "AP8="}, "l": [1.0, 2.0], "t": True},
        {"f": [2.5], "i": [-4], "s": ["d"], "b": [{"b64": "YQ=="}], "l": [3, 4], "t": [False]},
    ]
    examples[1]["l"] = [3.0, 4.0]
    serialized = tf_example.examples_from_json(examples)
    assert serialized.dtype == object and serialized.shape == (2,)
    features = {
        "f": tf.io.FixedLenFeature([1], tf.float32),
        "i": tf.io.FixedLenFeature([1], tf.int64),
        "s": tf.io.FixedLenFeature([1], tf.string),
        "b": tf.io.FixedLenFeature([1], tf.string),
        "l": tf.io.FixedLenFeature([2], tf.float32),
        "t": tf.io.FixedLenFeature([1], tf.int64),
    }
    parsed = {
        k: v.numpy().tolist() for k, v in tf.io.parse_example(list(serialized), features).items()
    }
    assert parsed == {
        "f": [[1.5], [2.5]],
        "i": [[3], [-4]],
        "s": [[b"abc"], [b"d"]],
        "b": [[b"\x00\xff"], [b"a"]],
        "l": [[1.0, 2.0], [3.0, 4.0]],
        "t": [[1], [0]],
    }


def test_context_is_merged_and_examples_win(tf: ModuleType) -> None:
    serialized = tf_example.examples_from_json([{"x": 1.0}, {"x": 2.0, "c": 5.0}], {"c": 9.0})
    features = {
        "x": tf.io.FixedLenFeature([1], tf.float32),
        "c": tf.io.FixedLenFeature([1], tf.float32),
    }
    parsed = tf.io.parse_example(list(serialized), features)
    assert parsed["c"].numpy().tolist() == [[9.0], [5.0]]
    assert parsed["x"].numpy().tolist() == [[1.0], [2.0]]


def test_json_ints_are_int64_and_decimals_float(tf: ModuleType) -> None:
    serialized = tf_example.examples_from_json([{"a": 1, "b": 1.0, "e": []}])
    example = tf.train.Example.FromString(serialized[0])
    assert example.features.feature["a"].WhichOneof("kind") == "int64_list"
    assert example.features.feature["b"].WhichOneof("kind") == "float_list"
    assert example.features.feature["e"].WhichOneof("kind") is None


@pytest.mark.parametrize(
    ("example", "message"),
    [
        ({"x": [1, 2.5]}, "Unexpected element type in feature: x expecting type: int64"),
        ({"x": [2.5, "a"]}, "Unexpected element type in feature: x expecting type: float"),
        ({"x": ["a", 1]}, "Unexpected element type in feature: x expecting type: bytes"),
        ({"x": [[1]]}, "Feature: x has element with unexpected JSON type: Array"),
        ({"x": {"a": 1}}, "Feature: x has element with unexpected JSON type: Object"),
        ({"x": 2**63}, "Feature: x has uint64 element. Only int64 is supported."),
        ({"x": 1e39}, "Cannot convert JSON value: 1e+39 to float without loss of precision."),
        ({"x": {"b64": "!"}}, "Unable to base64 decode"),
    ],
)
def test_example_feature_errors(example: dict[str, Any], message: str) -> None:
    with pytest.raises(ServingError) as caught:
        tf_example.examples_from_json([example])
    assert (caught.value.code, caught.value.message) == (Code.INVALID_ARGUMENT, message)


def test_no_examples() -> None:
    with pytest.raises(ServingError, match="Input is empty"):
        tf_example.examples_from_json([])


def _example(**features: list[float]) -> example_pb2.Example:
    example = example_pb2.Example()
    for name, values in features.items():
        example.features.feature[name].float_list.value.extend(values)
    return example


def test_examples_from_example_list(tf: ModuleType) -> None:
    model_input = input_pb2.Input()
    model_input.example_list.examples.extend([_example(x=[1.0]), _example(x=[2.0])])
    serialized = tf_example.examples_from_input(model_input)
    assert serialized.dtype == object and serialized.shape == (2,)
    parsed = tf.io.parse_example(list(serialized), {"x": tf.io.FixedLenFeature([1], tf.float32)})
    np.testing.assert_array_equal(parsed["x"].numpy(), [[1.0], [2.0]])


def test_examples_from_input_with_context_merges_and_examples_win(tf: ModuleType) -> None:
    model_input = input_pb2.Input()
    with_context = model_input.example_list_with_context
    with_context.context.CopyFrom(_example(c=[9.0], x=[0.0]))
    with_context.examples.extend([_example(x=[1.0]), _example(x=[2.0], c=[5.0])])
    serialized = tf_example.examples_from_input(model_input)
    spec_ = {
        "x": tf.io.FixedLenFeature([1], tf.float32),
        "c": tf.io.FixedLenFeature([1], tf.float32),
    }
    parsed = tf.io.parse_example(list(serialized), spec_)
    np.testing.assert_array_equal(parsed["x"].numpy(), [[1.0], [2.0]])
    np.testing.assert_array_equal(parsed["c"].numpy(), [[9.0], [5.0]])


@pytest.mark.parametrize("kind", [None, "example_list", "example_list_with_context"])
def test_empty_input_is_invalid(kind: str | None) -> None:
    model_input = input_pb2.Input()
    if kind:
        getattr(model_input, kind).SetInParent()
    with pytest.raises(ServingError, match=r"^INVALID_ARGUMENT: Input is empty\.$"):
        tf_example.examples_from_input(model_input)
