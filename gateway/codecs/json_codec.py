"""TF Serving's REST JSON: predict (row and columnar), classify/regress, status and metadata.

Semantics and error texts follow ``tensorflow_serving/util/json_tensor.cc`` and ``api_rest.md``.
Bodies are parsed once (orjson; see ``jsontext.parse_json``) and turned into numpy arrays with bulk
conversions; element-by-element validation runs only when the bulk path finds something wrong, so
that the error names the first offending value exactly as TF Serving would.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import orjson

from gateway.codecs.jsontext import (
    FLT_MAX,
    float_tokens,
    format_float32,
    json_type_string,
    nest_tokens,
    parse_json,
    value_to_string,
)
from gateway.codecs.tensor_proto import check_input_names
from gateway.shapes import shape_text as _shape_text
from tfsgate.core import dtypes
from tfsgate.core.protos import example_pb2, feature_pb2
from tfsgate.core.signatures import SignatureSpec, TensorSpec
from tfsgate.core.status import Code, ServingError, invalid_argument

SignatureSource = SignatureSpec | Callable[[str], SignatureSpec]

_B64 = "b64"
_BYTES_SUFFIX = "_bytes"
_MAX_INT = {"float": 2**24 - 1, "double": 2**53 - 1}  # largest ints a float/double holds exactly


@dataclass(frozen=True)
class PredictInput:
    """A decoded predict body: tensors by signature input key, as TF Serving would feed them."""

    tensors: dict[str, np.ndarray]
    signature_name: str  # as sent; "" when absent (the default signature)
    row_format: bool  # True for "instances", False for "inputs"; the answer uses the same format


@dataclass(frozen=True)
class ExamplesInput:
    """A decoded classify/regress body: JSON example objects, optional context, signature name."""

    examples: list[dict[str, Any]]
    context: dict[str, Any] | None
    signature_name: str


# =========================================================================== request basics


def parse_request_object(body: bytes | str) -> dict[str, Any]:
    """Parse a body that must be a JSON object (TF: "JSON Value: ... Is not object")."""
    document = parse_json(body)
    if not isinstance(document, dict):
        raise _format_error(document, "Is not object")
    return document


def request_signature_name(document: dict[str, Any]) -> str:
    """The optional "signature_name"; "" when absent. It must be a string."""
    name = document.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid_argument(
            f"JSON Value: {value_to_string(document)} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    return name


def _format_error(document: Any, message: str) -> ServingError:
    return invalid_argument(f"JSON Value: {value_to_string(document)} {message}")


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(_B64), str)


def _is_named_object(value: Any) -> bool:
    return isinstance(value, dict) and not _is_b64(value)


def _b64decode(value: dict[str, Any]) -> bytes:
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


def _lossy_error(value: Any, target: str) -> ServingError:
    return invalid_argument(
        f"Cannot convert JSON value: {value_to_string(value)} to {target} "
        "without loss of precision."
    )


def _check_decimal(value: Any, tf_name: str, target: str) -> float:
    if type(value) not in (int, float):
        raise _type_error(value, tf_name)
    if isinstance(value, int):
        if abs(value) > _MAX_INT[target]:
            raise _lossy_error(value, target)
        return float(value)
    if target == "float" and math.isfinite(value) and abs(value) > FLT_MAX:
        raise _lossy_error(value, target)
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
        if not _is_b64(value):
            raise invalid_argument(
                f"JSON Value: {value_to_string(value)} not formatted correctly for base64 data"
            )
        return _b64decode(value)
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
    try:
        wide = np.array(flat, dtype=np.float64)
    except OverflowError:
        raise _Slow from None
    target = "float" if tf_name == "DT_FLOAT" else "double"
    magnitude = np.abs(wide)
    if target == "float" and bool((np.isfinite(wide) & (magnitude > FLT_MAX)).any()):
        raise _Slow
    for index in np.flatnonzero(magnitude > _MAX_INT[target]).tolist():
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


def dense_to_array(value: Any, tf_name: str) -> np.ndarray:
    """One JSON value (scalar or nested lists) as a tensor of ``tf_name``, TF's rules and errors."""
    shape = _dense_shape(value)
    flat: list[Any] = []
    try:
        _walk(value, 0, shape, tf_name, flat, bulk=True)
        return _to_array(flat, shape, tf_name)
    except _Slow:
        flat = []
        _walk(value, 0, shape, tf_name, flat, bulk=False)
        return _exact_array(flat, shape, tf_name)


# =========================================================================== predict request


def decode_predict_request(
    body: bytes | str | dict[str, Any], signature: SignatureSource
) -> PredictInput:
    """Decode a ``:predict`` body against a signature (``FillPredictRequestFromJson``).

    ``signature`` is the signature, or a resolver called with the body's "signature_name" ("" for
    the default) that returns it or raises. Tensors come back with the shapes TF Serving would feed;
    see ``gateway.shapes.fit_to_signature`` for what Triton needs on top.
    """
    document = body if isinstance(body, dict) else parse_request_object(body)
    signature_name = request_signature_name(document)
    spec = signature if isinstance(signature, SignatureSpec) else signature(signature_name)
    if not spec.inputs:
        shown = signature_name or "DEFAULT"
        raise invalid_argument(f"Failed to get input map for signature: {shown}")
    has_instances, has_inputs = "instances" in document, "inputs" in document
    if has_instances and has_inputs:
        raise _format_error(
            document,
            "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist ",
        )
    if has_instances:
        tensors = _decode_instances(document, spec)
    elif has_inputs:
        tensors = _decode_columnar(document["inputs"], spec)
    else:
        raise invalid_argument("Missing 'inputs' or 'instances' key")
    check_input_names(list(tensors), spec)
    return PredictInput(tensors, signature_name, row_format=has_instances)


def _decode_columnar(value: Any, spec: SignatureSpec) -> dict[str, np.ndarray]:
    """``FillTensorMapFromInputsMap``: one plain value, or an object naming every input."""
    inputs = spec.inputs
    if not _is_named_object(value):
        if len(inputs) > 1:
            raise invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map"
            )
        (key, tensor_spec), *_ = inputs.items()
        return {key: dense_to_array(value, tensor_spec.dtype)}
    tensors = {}
    for key in sorted(inputs):
        if key not in value:
            raise invalid_argument(f"Missing named input: {key} in 'inputs' object.")
        tensors[key] = dense_to_array(value[key], inputs[key].dtype)
    return tensors


def _decode_instances(document: dict[str, Any], spec: SignatureSpec) -> dict[str, np.ndarray]:
    instances = document["instances"]
    if not isinstance(instances, list):
        raise _format_error(document, "Excepting 'instances' to be an list/array")
    if not instances:
        raise _format_error(document, "No values in 'instances' array")
    if not isinstance(instances[0], dict) and len(spec.inputs) > 1:
        raise invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple input "
            "tensors required as per tensorinfo_map"
        )
    try:
        return _instances_bulk(instances, spec)
    except ServingError:
        return _instances_exact(instances, spec)  # raises the error TF would report first


def _instances_bulk(instances: list[Any], spec: SignatureSpec) -> dict[str, np.ndarray]:
    """Row format decoded per input as one dense value: the same result as stacking the
    instances when they are valid; any error sends the caller to the exact path."""
    if not _is_named_object(instances[0]):
        key = sorted(spec.inputs)[0]
        if any(_is_named_object(item) for item in instances):
            raise invalid_argument("mixed instances")
        return {key: dense_to_array(instances, spec.inputs[key].dtype)}
    names = set(spec.inputs)
    for item in instances:
        if not _is_named_object(item) or item.keys() != names:
            raise invalid_argument("mismatched instance keys")
    return {
        key: dense_to_array([item[key] for item in instances], spec.inputs[key].dtype)
        for key in sorted(names)
    }


class _InstanceStack:
    """Per-input tensors of each instance, checked for equal size and shape as they arrive."""

    def __init__(self, inputs: Mapping[str, TensorSpec]) -> None:
        self.inputs = inputs
        self.rows: dict[str, list[np.ndarray]] = {}

    def add(self, value: Any, key: str) -> None:
        """``AddInstanceItem``."""
        if key not in self.inputs:
            raise invalid_argument(f"JSON object: does not have named input: {key}")
        array = dense_to_array(value, self.inputs[key].dtype)
        rows = self.rows.setdefault(key, [])
        if rows and rows[0].size != array.size:
            raise invalid_argument(f"Expecting tensor size: {rows[0].size} but got: {array.size}")
        if rows and rows[0].shape != array.shape:
            raise invalid_argument(
                f"Expecting shape {_shape_text(rows[0].shape)} but got: {_shape_text(array.shape)}"
            )
        rows.append(array)

    def stacked(self) -> dict[str, np.ndarray]:
        return {key: np.stack(rows) for key, rows in self.rows.items()}


def _instances_exact(instances: list[Any], spec: SignatureSpec) -> dict[str, np.ndarray]:
    """``FillTensorMapFromInstancesList``, item by item, for TF's first error and its wording."""
    stack = _InstanceStack(spec.inputs)
    names = sorted(spec.inputs)
    objects = _is_named_object(instances[0])
    for index, item in enumerate(instances):
        if objects:
            _add_object_instance(stack, index, item, names)
            continue
        if _is_named_object(item):
            raise invalid_argument(
                f"Expecting value/list but got object at item {index} of input list"
            )
        try:
            stack.add(item, names[0])
        except ServingError as err:
            raise invalid_argument(
                f"Failed to process element: {index} of 'instances' list. Error: {err}"
            ) from None
    return stack.stacked()


def _add_object_instance(stack: _InstanceStack, index: int, item: Any, names: list[str]) -> None:
    if not _is_named_object(item):
        raise invalid_argument(f"Expecting object but got list at item {index} of input list")
    for key, value in item.items():
        try:
            stack.add(value, key)
        except ServingError as err:
            raise invalid_argument(
                f"Failed to process element: {index} key: {key} of 'instances' list. Error: {err}"
            ) from None
    if set(item) != set(names):
        raise invalid_argument(
            f"Failed to process element: {index} of 'instances' list. JSON object: "
            f"{value_to_string(item)} keys must be equal to: {','.join(names)}"
        )


# =========================================================================== Triton shapes


# =========================================================================== predict response


def encode_predict_response(outputs: Mapping[str, np.ndarray], row_format: bool) -> bytes:
    """``MakeJsonFromTensors``: ``{"predictions": ...}`` for row requests, ``{"outputs": ...}`` for
    columnar ones. One output is written bare, several by name (row: one object per instance).
    DT_STRING outputs whose name ends in "_bytes" are written as ``{"b64": ...}``."""
    if not outputs:
        raise invalid_argument("Cannot convert empty tensor map to JSON")
    if row_format:
        return _row_response(outputs)
    if len(outputs) == 1:
        ((name, array),) = outputs.items()
        body: Any = _tensor_fragment(array, name)
    else:
        body = {name: _tensor_fragment(array, name) for name, array in outputs.items()}
    return orjson.dumps({"outputs": body})


def _row_response(outputs: Mapping[str, np.ndarray]) -> bytes:
    batch = 0
    for name, array in outputs.items():
        if array.ndim == 0:
            raise invalid_argument(f"Tensor name: {name} has no shape information ")
        size = array.shape[0]
        if size < 1:
            raise invalid_argument(f"Tensor name: {name} has invalid batch size: {size}")
        if batch and size != batch:
            raise invalid_argument(
                f"Tensor name: {name} has inconsistent batch size: {size} expecting: {batch}"
            )
        batch = size
    if len(outputs) == 1:
        ((name, array),) = outputs.items()
        return orjson.dumps({"predictions": _tensor_fragment(array, name)})
    rows = [
        {name: _tensor_fragment(array[i], name) for name, array in outputs.items()}
        for i in range(batch)
    ]
    return orjson.dumps({"predictions": rows})


def _tensor_fragment(array: np.ndarray | np.generic, name: str) -> orjson.Fragment:
    """The JSON text of one tensor (nested lists, or a bare scalar for rank 0)."""
    array = np.asarray(array)
    kind = array.dtype.kind
    if array.dtype == dtypes.BY_TF_NAME["DT_BFLOAT16"].numpy or kind == "f":
        return orjson.Fragment(nest_tokens(float_tokens(array), array.shape))
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


# =========================================================================== classify / regress


def decode_examples(body: bytes | str | dict[str, Any]) -> ExamplesInput:
    """Decode a ``:classify``/``:regress`` body (``FillClassifyRegressRequestFromJson``)."""
    document = body if isinstance(body, dict) else parse_request_object(body)
    signature_name = request_signature_name(document)
    context = document.get("context")
    if "context" in document:
        _example_proto(context)  # TF converts (and so validates) the context first
    if "examples" not in document:
        raise _format_error(
            document, "When method is classify, key 'examples' is expected and was not found"
        )
    examples = document["examples"]
    if not isinstance(examples, list):
        raise _format_error(document, "Expecting 'examples' value to be an list/array")
    if not examples:
        raise _format_error(document, "'examples' value is an empty array")
    return ExamplesInput(examples, context if "context" in document else None, signature_name)


def build_serialized_examples(
    examples: Sequence[Any], context: dict[str, Any] | None = None
) -> np.ndarray:
    """Serialized ``tf.Example`` protos (object array of bytes, shape ``[n]``) from JSON examples.

    With a context, each entry is the serialized context followed by the serialized example, which
    is what TF Serving feeds for ``ExampleListWithContext``: parsing merges the two, and an
    example's feature replaces a context feature of the same name.
    """
    prefix = b"" if context is None else _example_proto(context).SerializeToString()
    serialized = [prefix + _example_proto(e).SerializeToString() for e in examples]
    if not serialized:
        raise invalid_argument("Input is empty.")
    out = np.empty(len(serialized), dtype=object)
    out[:] = serialized
    return out


def _example_proto(value: Any) -> example_pb2.Example:
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
            raise _lossy_error(value, "float")
        return "float_list", value
    if isinstance(value, str):
        return "bytes_list", value.encode("utf-8")
    if _is_b64(value):
        return "bytes_list", _b64decode(value)
    raise invalid_argument(
        f"Feature: {name} has element with unexpected JSON type: {json_type_string(value)}"
    )


def encode_classify_response(results: Sequence[Sequence[tuple[str, float]]]) -> bytes:
    """``{"results": [[["label", score], ...], ...]}`` (``MakeJsonFromClassificationResult``)."""
    if not results:
        raise invalid_argument("Cannot convert empty ClassificationResults to JSON")
    rows = [
        orjson.Fragment(
            "["
            + ",".join(
                "[" + orjson.dumps(label).decode() + "," + format_float32(score) + "]"
                for label, score in classes
            )
            + "]"
        )
        for classes in results
    ]
    return orjson.dumps({"results": rows})


def encode_regress_response(values: Sequence[float] | np.ndarray) -> bytes:
    """``{"results": [v, ...]}``, values written as float32 (``MakeJsonFromRegressionResult``)."""
    flat = np.asarray(values, dtype=np.float32).ravel()
    if flat.size == 0:
        raise invalid_argument("Cannot convert empty RegressionResults to JSON")
    return orjson.dumps({"results": orjson.Fragment(nest_tokens(float_tokens(flat), flat.shape))})


# =========================================================================== status / metadata


@dataclass(frozen=True)
class VersionStatus:
    """One entry of GetModelStatusResponse.model_version_status."""

    version: int
    state: str  # START, LOADING, AVAILABLE, UNLOADING, END, UNKNOWN
    error_code: str = "OK"  # TF status code name
    error_message: str = ""


class VersionStatusLike(Protocol):
    """Anything shaped like ``VersionStatus`` (the data plane has its own frozen type)."""

    @property
    def version(self) -> int: ...
    @property
    def state(self) -> str: ...
    @property
    def error_code(self) -> str: ...
    @property
    def error_message(self) -> str: ...


def encode_model_status(versions: Iterable[VersionStatusLike]) -> bytes:
    """GetModelStatusResponse as TF Serving prints it (proto JSON, field names kept, defaults
    printed, int64 versions as strings)."""
    entries = [
        {
            "version": str(v.version),
            "state": v.state,
            "status": {"error_code": v.error_code, "error_message": v.error_message},
        }
        for v in versions
    ]
    return orjson.dumps({"model_version_status": entries})


def encode_model_metadata(
    model_name: str, version: int, signatures: Mapping[str, SignatureSpec]
) -> bytes:
    """GetModelMetadataResponse for the REST ``/metadata`` path: ``signature_def`` nested twice
    (the metadata map key, then the SignatureDefMap field), signatures in the given order."""
    signature_defs = {name: _signature_def_json(sig) for name, sig in signatures.items()}
    document = {
        "model_spec": {"name": model_name, "signature_name": "", "version": str(version)},
        "metadata": {"signature_def": {"signature_def": signature_defs}},
    }
    return orjson.dumps(document)


def _signature_def_json(signature: SignatureSpec) -> dict[str, Any]:
    return {
        "inputs": {key: _tensor_info_json(spec) for key, spec in signature.inputs.items()},
        "outputs": {key: _tensor_info_json(spec) for key, spec in signature.outputs.items()},
        "method_name": signature.method_name,
        "defaults": {},
    }


def _tensor_info_json(spec: TensorSpec) -> dict[str, Any]:
    if spec.shape is None:
        shape: dict[str, Any] = {"dim": [], "unknown_rank": True}
    else:
        shape = {"dim": [{"size": str(d), "name": ""} for d in spec.shape], "unknown_rank": False}
    return {"dtype": spec.dtype, "tensor_shape": shape, "name": spec.tensor_name}
