"""tf.Examples for classify and regress: REST JSON examples and gRPC ``Input`` as serialized protos.

Both front doors end here, so both feed the model the same bytes: a string tensor of shape ``[n]``
holding serialized ``tf.Example`` protos. With a context (``ExampleListWithContext``, or the REST
"context" object), each entry is the serialized context followed by the serialized example, which
is what TF Serving feeds (``InputToSerializedExampleTensor``): parsing merges the two, and an
example's feature replaces a context feature of the same name. JSON conversion follows
``MakeExampleFromJsonObject`` / ``AddValueToFeature`` in ``tensorflow_serving/util/json_tensor.cc``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from gateway.codecs.json_tensors import b64decode, is_b64, lossy_error
from gateway.codecs.jsontext import FLT_MAX, json_type_string
from tfsgate.core.example_input import serialized_examples
from tfsgate.core.protos import example_pb2, feature_pb2, input_pb2
from tfsgate.core.status import invalid_argument


def examples_from_json(
    examples: Sequence[Any], context: dict[str, Any] | None = None
) -> np.ndarray:
    """REST: JSON example objects (and an optional context object) as serialized examples."""
    prefix = b"" if context is None else example_from_json(context).SerializeToString()
    return _serialized([prefix + example_from_json(e).SerializeToString() for e in examples])


def examples_from_input(model_input: input_pb2.Input) -> np.ndarray:
    """gRPC: an ``Input`` (``example_list`` or ``example_list_with_context``) as serialized
    examples (tfsgate/core/example_input.py); any other kind is an empty input."""
    return _serialized(serialized_examples(model_input) or [])


def _serialized(serialized: list[bytes]) -> np.ndarray:
    """Object array of bytes, shape ``[n]``; TF Serving refuses an empty input."""
    if not serialized:
        raise invalid_argument("Input is empty.")
    out = np.empty(len(serialized), dtype=object)
    out[:] = serialized
    return out


def example_from_json(value: Any) -> example_pb2.Example:
    """``MakeExampleFromJsonObject``."""
    if not isinstance(value, dict):
        raise invalid_argument(
            f"Example must be JSON object but got JSON {json_type_string(value)}"
        )
    example = example_pb2.Example()
    features = example.features.feature
    for name, content in value.items():
        features[name].CopyFrom(_feature(name, content if isinstance(content, list) else [content]))
    return example


_KIND_TEXT = {"bytes_list": "bytes", "float_list": "float", "int64_list": "int64", None: "UNKNOWN"}


def _feature(name: str, values: Iterable[Any]) -> feature_pb2.Feature:
    """``AddValueToFeature`` for each value: ints and bools int64, decimals float, strings and b64
    objects bytes; one kind per feature."""
    kind: str | None = None
    collected: list[Any] = []
    for value in values:
        value_kind, converted = _feature_value(name, value)
        if kind is not None and value_kind != kind:
            raise invalid_argument(
                f"Unexpected element type in feature: {name} expecting type: {_KIND_TEXT[kind]}"
            )
        kind = value_kind
        collected.append(converted)
    feature = feature_pb2.Feature()
    if kind is not None:
        getattr(feature, kind).value.extend(collected)
    return feature


def _feature_value(name: str, value: Any) -> tuple[str, Any]:
    if isinstance(value, bool):
        return "int64_list", int(value)
    if isinstance(value, int):
        if value > 2**63 - 1:
            raise invalid_argument(f"Feature: {name} has uint64 element. Only int64 is supported.")
        return "int64_list", value
    if isinstance(value, float):
        if math.isfinite(value) and abs(value) > FLT_MAX:
            raise lossy_error(value, "float")
        return "float_list", value
    if isinstance(value, str):
        return "bytes_list", value.encode("utf-8")
    if is_b64(value):
        return "bytes_list", b64decode(value)
    raise invalid_argument(
        f"Feature: {name} has element with unexpected JSON type: {json_type_string(value)}"
    )
