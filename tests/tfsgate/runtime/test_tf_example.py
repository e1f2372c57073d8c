"""The numpy/protobuf tf.Example parser against TensorFlow's own ParseExample and ParseExampleV2:
same arrays for good examples, same status text for bad ones."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest

from tfsgate.core import protos
from tfsgate.runtime.tf_example import DenseFeature, DenseParser, Example, ParseError

# key -> (dtype, shape, default or None)
SPEC: dict[str, tuple[str, tuple[int, ...], Any]] = {
    "x": ("float32", (1,), None),
    "x2": ("float32", (1,), [0.0]),
    "i": ("int64", (2,), [7, 8]),
    "s": ("string", (), "d"),
    "m": ("float32", (2, 2), [[1.0, 2.0], [3.0, 4.0]]),
    "r": ("string", (2,), ["a", "b"]),
}


def example(**features: tuple[str, list[Any] | None]) -> bytes:
    message = protos.example_pb2.Example()
    for key, (kind, values) in features.items():
        feature = message.features.feature[key]
        if kind == "empty":
            feature.SetInParent()
        else:
            getattr(feature, kind).value.extend(values or [])
    return bytes(message.SerializeToString())


F, INT, B = "float_list", "int64_list", "bytes_list"
CASES: dict[str, list[bytes]] = {
    "all_present": [
        example(x=(F, [1.0])),
        example(
            x=(F, [2.0]),
            x2=(F, [5.0]),
            i=(INT, [1, 2]),
            s=(B, [b"q"]),
            m=(F, [9, 8, 7, 6]),
            r=(B, [b"u", b"v"]),
        ),
    ],
    "missing_required": [example(x=(F, [1.0])), example(x2=(F, [1.0]))],
    "int_for_float": [example(x=(INT, [1]))],
    "bytes_for_float": [example(x=(B, [b"a"]))],
    "float_for_int": [example(x=(F, [1.0]), i=(F, [1.0, 2.0]))],
    "float_for_string": [example(x=(F, [1.0]), s=(F, [1.0]))],
    "too_many_floats": [example(x=(F, [1.0, 2.0]))],
    "too_few_ints": [example(x=(F, [1.0]), i=(INT, [1]))],
    "too_many_ints": [example(x=(F, [1.0]), i=(INT, [1, 2, 3]))],
    "too_many_bytes": [example(x=(F, [1.0]), r=(B, [b"1", b"2", b"3"]))],
    "too_few_bytes": [example(x=(F, [1.0]), r=(B, [b"1"]))],
    "matrix_short": [example(x=(F, [1.0]), m=(F, [1.0]))],
    "empty_list_required": [example(x=("empty", None))],
    "empty_list_defaulted": [example(x=(F, [1.0]), x2=("empty", None))],
    "not_a_proto": [b"\x0a\x7fnot a proto"],
    "empty_example": [b""],
    "no_examples": [],
}


def parse_with_tensorflow(
    tf: ModuleType, version: int, serialized: np.ndarray
) -> tuple[dict[str, np.ndarray] | None, str | None, str]:
    """(outputs, error text, node name) from a TF1 session running the ParseExample op."""
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.ops import gen_parsing_ops

    tf1 = tf.compat.v1
    graph = tf.Graph()
    keys = list(SPEC)
    with graph.as_default():
        placeholder = tf1.placeholder(tf.string, [None])
        defaults = [
            tf.constant([], tf.as_dtype(d)) if v is None else tf.constant(v, tf.as_dtype(d))
            for d, _, v in SPEC.values()
        ]
        shapes = [s for _, s, _ in SPEC.values()]
        if version == 1:
            op = gen_parsing_ops.parse_example(
                placeholder,
                tf.constant([], tf.string),
                [],
                [tf.constant(k) for k in keys],
                defaults,
                [],
                shapes,
            )
            outputs = dict(zip(keys, op.dense_values, strict=True))
        else:
            spec = {
                k: tf.io.FixedLenFeature(s, tf.as_dtype(d), default_value=v)
                for k, (d, s, v) in SPEC.items()
            }
            outputs = tf1.io.parse_example(placeholder, spec)
        node = next(o.name for o in graph.get_operations() if o.type.startswith("ParseExample"))
    with tf1.Session(graph=graph) as session:
        options = config_pb2.CallableOptions(
            feed=[placeholder.name], fetch=[outputs[k].name for k in keys]
        )
        run = session._make_callable_from_options(options)
        try:
            return dict(zip(keys, run(serialized), strict=True)), None, node
        except tf.errors.OpError as exc:
            return None, exc.message, node


@pytest.mark.parametrize("version", [1, 2], ids=["ParseExample", "ParseExampleV2"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_parser_agrees_with_tensorflow(tf: ModuleType, version: int, case: str) -> None:
    serialized = np.empty(len(CASES[case]), dtype=object)
    serialized[:] = CASES[case]
    expected, expected_error, node = parse_with_tensorflow(tf, version, serialized)
    features = [DenseFeature(k, d, s, v) for k, (d, s, v) in SPEC.items()]
    parser = DenseParser(features, node)
    if expected_error is not None:
        with pytest.raises(ParseError) as caught:
            parser.parse(serialized)
        assert str(caught.value) == expected_error
        return
    assert expected is not None
    parsed = parser.parse(serialized)
    for key, want in expected.items():
        assert parsed[key].shape == want.shape, key
        assert parsed[key].dtype == want.dtype, key
        assert parsed[key].tolist() == want.tolist(), key


def test_private_example_class_reads_tensorflow_examples() -> None:
    data = example(x=(F, [1.5]), s=(B, [b"q"]))
    parsed = Example.FromString(data)
    assert list(parsed.features.feature["x"].float_list.value) == [1.5]
    # Map entries serialise in no fixed order (protobuf), so compare as TensorFlow's message reads it.
    tf_example = protos.example_pb2.Example
    assert tf_example.FromString(parsed.SerializeToString()) == tf_example.FromString(data)


def test_feature_json_round_trip() -> None:
    feature = DenseFeature("m", "float32", (2, 2), [[1.0, 2.0], [3.0, 4.0]])
    assert DenseFeature.from_json(feature.to_json()) == feature


def test_unsupported_dtype_refused() -> None:
    with pytest.raises(ValueError, match="unsupported dtype"):
        DenseParser([DenseFeature("h", "float16", (1,))], "ParseExample")
