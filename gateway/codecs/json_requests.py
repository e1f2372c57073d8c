"""TF Serving's REST request and response bodies: predict (row and columnar), classify, regress.

``FillPredictRequestFromJson``, ``FillClassifyRegressRequestFromJson`` and the ``MakeJsonFrom*``
writers of ``tensorflow_serving/util/json_tensor.cc``, with their error texts (``api_rest.md`` for
the shapes). Bodies are parsed once (orjson; see ``jsontext.parse_json``); tensors are converted by
``json_tensors``, tf.Examples built by ``tf_example``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from gateway.codecs import json_numeric
from gateway.codecs.json_tensors import (
    dense_to_array,
    is_named_object,
    small_floats,
    tensor_fragment,
)
from gateway.codecs.jsontext import (
    float_json,
    format_float32,
    parse_json,
    value_to_string,
)
from gateway.codecs.tensor_proto import check_input_names
from gateway.codecs.tf_example import example_from_json
from gateway.shapes import shape_text as _shape_text
from tfsgate.core.signatures import SignatureSpec, TensorSpec
from tfsgate.core.status import ServingError, invalid_argument

SignatureSource = SignatureSpec | Callable[[str], SignatureSpec]


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
        raise format_error(document, "Is not object")
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


def format_error(document: Any, message: str) -> ServingError:
    return invalid_argument(f"JSON Value: {value_to_string(document)} {message}")


# =========================================================================== predict


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
        raise format_error(
            document,
            "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist ",
        )
    if has_instances:
        tensors = _decode_instances(document, spec)
    elif has_inputs:
        tensors = _decode_columnar(document["inputs"], spec)
    else:
        raise invalid_argument("Missing 'inputs' or 'instances' key")
    if tensors.keys() != spec.inputs.keys():  # else the names and their count are right
        check_input_names(list(tensors), spec)
    return PredictInput(tensors, signature_name, row_format=has_instances)


class PredictBody:
    """A ``:predict`` body read once, before its signature is known: the signature name it asks
    for, its format, and its tensors for the signature the name resolves to. (A plain class: a
    frozen dataclass's init was a tenth of a small request's decode.)"""

    __slots__ = ("body", "document", "numeric", "row_format", "signature_name")

    def __init__(self, body: bytes) -> None:
        self.body = body
        # The float-only fast path's reading when it takes the body, else the exact path's.
        self.numeric = json_numeric.parse_predict(body)
        self.document: dict[str, Any] | None = None
        if self.numeric is not None:
            self.signature_name = self.numeric.signature_name
            self.row_format = self.numeric.row_format
        else:
            self.document = parse_request_object(body)
            self.signature_name = request_signature_name(self.document)
            self.row_format = "instances" in self.document

    def tensors(self, signature: SignatureSpec) -> dict[str, np.ndarray]:
        """The tensors, read once (``DataPlane.predict`` decodes by the resolved signature): the
        body and its reading are let go here, not held through Triton's call and the answer (a
        5 MB body and 2 MB of doubles for a 1 MB tensor)."""
        body, numeric, document = self.body, self.numeric, self.document
        self.body, self.numeric, self.document = b"", None, None
        # The fast path's tensors are keyed by the signature's own input names.
        if numeric is not None and (found := numeric.tensors(signature)) is not None:
            return found
        del numeric
        document = document if document is not None else parse_request_object(body)
        del body
        inputs = signature.inputs
        if len(inputs) == 1 and "inputs" not in document:
            # The usual small body, {"instances": [[0.5, ...], ...]} for one float input: what
            # decode_predict_request's checks pass, read in one step (with the parse: 4.2 -> 2.7 us
            # for half_plus_two's body).
            ((key, spec),) = inputs.items()
            array = small_floats(document.get("instances"), spec.dtype)
            if array is not None:
                return {key: array}
        return decode_predict_request(document, signature).tensors


def _decode_columnar(value: Any, spec: SignatureSpec) -> dict[str, np.ndarray]:
    """``FillTensorMapFromInputsMap``: one plain value, or an object naming every input."""
    inputs = spec.inputs
    if not is_named_object(value):
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
        raise format_error(document, "Excepting 'instances' to be an list/array")
    if not instances:
        raise format_error(document, "No values in 'instances' array")
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
    if not is_named_object(instances[0]):
        inputs = spec.inputs
        key = next(iter(inputs)) if len(inputs) == 1 else sorted(inputs)[0]
        fast = small_floats(instances, inputs[key].dtype)
        if fast is not None:
            return {key: fast}
        if any(is_named_object(item) for item in instances):
            raise invalid_argument("mixed instances")
        return {key: dense_to_array(instances, inputs[key].dtype)}
    names = set(spec.inputs)
    for item in instances:
        if not is_named_object(item) or item.keys() != names:
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
    objects = is_named_object(instances[0])
    for index, item in enumerate(instances):
        if objects:
            _add_object_instance(stack, index, item, names)
            continue
        if is_named_object(item):
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
    if not is_named_object(item):
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
        body: Any = tensor_fragment(array, name)
    else:
        body = {name: tensor_fragment(array, name) for name, array in outputs.items()}
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
        return orjson.dumps({"predictions": tensor_fragment(array, name)})
    rows = [
        {name: tensor_fragment(array[i], name) for name, array in outputs.items()}
        for i in range(batch)
    ]
    return orjson.dumps({"predictions": rows})


# =========================================================================== classify / regress


def decode_examples(body: bytes | str | dict[str, Any]) -> ExamplesInput:
    """Decode a ``:classify``/``:regress`` body (``FillClassifyRegressRequestFromJson``)."""
    document = body if isinstance(body, dict) else parse_request_object(body)
    signature_name = request_signature_name(document)
    context = document.get("context")
    if "context" in document:
        example_from_json(context)  # TF converts (and so validates) the context first
    if "examples" not in document:
        raise format_error(
            document, "When method is classify, key 'examples' is expected and was not found"
        )
    examples = document["examples"]
    if not isinstance(examples, list):
        raise format_error(document, "Expecting 'examples' value to be an list/array")
    if not examples:
        raise format_error(document, "'examples' value is an empty array")
    return ExamplesInput(examples, context if "context" in document else None, signature_name)


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
    return orjson.dumps({"results": orjson.Fragment(float_json(flat))})
