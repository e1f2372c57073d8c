"""Dense ``tf.Example`` parsing without TensorFlow, as TF's ParseExample/ParseExampleV2 kernels do it.

For signatures whose graph starts with ParseExample, the converter cuts the graph after that node and
serves the rest as ONNX; the runner parses the serialized examples here. Results and error texts
follow ``tensorflow/core/util/example_proto_fast_parsing.cc`` (checked against TensorFlow by
tests/tfsgate/runtime/test_tf_example.py), and errors end with ``[[{{node <name>}}]]`` as the status
of TF's session does, so clients see what TF Serving would send them.

Self-contained (the converter copies this file beside ``model.py``): the standard library, numpy
and google.protobuf, which onnxruntime itself requires. The Example messages are described here from
their documented field numbers (tensorflow/core/example/example.proto, feature.proto) in a private
descriptor pool, so they never clash with TensorFlow's generated classes in a process that has both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

_PACKAGE = "tfsgate.runtime.example"

# TF dtype name -> (numpy dtype, the Feature oneof that holds it, TF's word in "expected type")
KINDS: dict[str, tuple[Any, str, str]] = {
    "float32": (np.float32, "float_list", "float"),
    "int64": (np.int64, "int64_list", "int64"),
    "string": (object, "bytes_list", "string"),
}
_KIND_WORDS = {"float_list": "float", "int64_list": "int64", "bytes_list": "string"}
# "Number of <word> values != expected" says bytes where the type word says string.
_COUNT_WORDS = {"float32": "float", "int64": "int64", "string": "bytes"}


def _example_class() -> Any:
    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="tfsgate_runtime_example.proto", package=_PACKAGE, syntax="proto3"
    )
    for name, kind in (
        ("BytesList", field.TYPE_BYTES),
        ("FloatList", field.TYPE_FLOAT),
        ("Int64List", field.TYPE_INT64),
    ):
        message = proto.message_type.add(name=name)
        message.field.add(name="value", number=1, type=kind, label=field.LABEL_REPEATED)
    feature = proto.message_type.add(name="Feature")
    feature.oneof_decl.add(name="kind")
    for name, number, type_name in (
        ("bytes_list", 1, "BytesList"),
        ("float_list", 2, "FloatList"),
        ("int64_list", 3, "Int64List"),
    ):
        feature.field.add(
            name=name,
            number=number,
            type=field.TYPE_MESSAGE,
            label=field.LABEL_OPTIONAL,
            type_name=f".{_PACKAGE}.{type_name}",
            oneof_index=0,
        )
    features = proto.message_type.add(name="Features")
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    entry.field.add(
        name="value",
        number=2,
        type=field.TYPE_MESSAGE,
        label=field.LABEL_OPTIONAL,
        type_name=f".{_PACKAGE}.Feature",
    )
    features.field.add(
        name="feature",
        number=1,
        type=field.TYPE_MESSAGE,
        label=field.LABEL_REPEATED,
        type_name=f".{_PACKAGE}.Features.FeatureEntry",
    )
    example = proto.message_type.add(name="Example")
    example.field.add(
        name="features",
        number=1,
        type=field.TYPE_MESSAGE,
        label=field.LABEL_OPTIONAL,
        type_name=f".{_PACKAGE}.Features",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.Example"))


Example = _example_class()


class ParseError(ValueError):
    """The examples cannot be parsed (INVALID_ARGUMENT); the message is TF's for the same input."""


@dataclass(frozen=True)
class DenseFeature:
    """One ``FixedLenFeature``: its key, dtype name, per-example shape and default (None: required)."""

    key: str
    dtype: str  # "float32" | "int64" | "string"
    shape: tuple[int, ...]
    default: Any = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "default": self.default,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DenseFeature:
        return cls(
            data["key"], data["dtype"], tuple(int(d) for d in data["shape"]), data.get("default")
        )


def _default_values(feature: DenseFeature) -> list[Any] | None:
    """The default as a flat list of ``size`` values (TF broadcasts a single value)."""
    if feature.default is None:
        return None
    flat = np.asarray(feature.default, dtype=object).reshape(-1).tolist()
    if feature.dtype == "string":
        flat = [v.encode() if isinstance(v, str) else bytes(v) for v in flat]
    if len(flat) == 1:
        return flat * feature.size
    if len(flat) != feature.size:
        raise ValueError(
            f"default of {feature.key} has {len(flat)} values, expected {feature.size}"
        )
    return flat


class DenseParser:
    """Parses a batch of serialized Examples into one array per feature, ``[batch, *shape]``."""

    def __init__(self, features: list[DenseFeature], node: str) -> None:
        for feature in features:
            if feature.dtype not in KINDS:
                raise ValueError(f"feature {feature.key}: unsupported dtype {feature.dtype}")
        self.features = list(features)
        self.node = node  # the graph's ParseExample node, named in errors as TF's session does
        self._defaults = [_default_values(f) for f in self.features]

    def _error(self, message: str) -> ParseError:
        return ParseError(f"{message}\n\t [[{{{{node {self.node}}}}}]]")

    def parse(self, serialized: np.ndarray) -> dict[str, np.ndarray]:
        flat = np.asarray(serialized, dtype=object).reshape(-1)
        columns: list[list[Any]] = [[] for _ in self.features]
        for index, data in enumerate(flat):
            feature_map = self._features(data)
            for feature, default, column in zip(
                self.features, self._defaults, columns, strict=True
            ):
                self._take(index, feature, default, feature_map.get(feature.key), column)
        out = {}
        for feature, column in zip(self.features, columns, strict=True):
            numpy_type = KINDS[feature.dtype][0]
            if numpy_type is object:
                array = np.empty(len(column), dtype=object)
                array[:] = column
            else:
                array = np.array(column, dtype=numpy_type)
            out[feature.key] = array.reshape((len(flat), *feature.shape))
        return out

    def _features(self, data: Any) -> Any:
        if isinstance(data, str):
            data = data.encode()
        try:
            return Example.FromString(bytes(data)).features.feature
        except DecodeError:
            text = bytes(data).decode("utf-8", "replace")
            raise self._error(f"Could not parse example input, value: '{text}'") from None

    def _take(
        self,
        index: int,
        feature: DenseFeature,
        default: list[Any] | None,
        value: Any,
        column: list[Any],
    ) -> None:
        _, wanted, word = KINDS[feature.dtype]
        kind = value.WhichOneof("kind") if value is not None else None
        if kind is not None and kind != wanted:
            raise self._error(
                f"Name: <unknown>, Key: {feature.key}, Index: {index}.  Data types don't match. "
                f"Data type: {_KIND_WORDS[kind]} but expected type: {word}"
            )
        values = getattr(value, kind).value if kind is not None else ()
        count = len(values)
        if count == feature.size:
            column.extend(values)
        elif count == 0:  # an empty list counts as missing, as in TF
            if default is None:
                raise self._error(
                    f"Name: <unknown>, Feature: {feature.key} (data type: {word}) is required but "
                    "could not be found."
                )
            column.extend(default)
        elif feature.dtype == "string" and count > feature.size:
            # TF's fast parser stops reading a bytes list at the expected size and then reports
            # the whole Example as unparseable.
            raise self._error(
                f"Name: <unknown>, Key: {feature.key}, Index: {index}.  Can't parse serialized Example."
            )
        else:
            shape = "[" + ",".join(str(d) for d in feature.shape) + "]"
            raise self._error(
                f"Name: <unknown>, Key: {feature.key}, Index: {index}.  Number of "
                f"{_COUNT_WORDS[feature.dtype]} values != expected.  Values size: {count} but output "
                f"shape: {shape}"
            )
