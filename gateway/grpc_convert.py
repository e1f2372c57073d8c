"""TF-Serving gRPC messages <-> data-plane types (``to_types`` / ``from_types`` for gRPC)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gateway.codecs.tensor_proto import (
    SPLICED_FROM,
    decode_predict_inputs,
    length_delimited,
    ndarray_to_tensor_proto,
    tensor_parts,
)
from gateway.codecs.tf_example import examples_from_input
from gateway.types import (
    ClassifyResult,
    ModelMetadata,
    ModelRef,
    PredictResult,
    RegressResult,
    ServedSpec,
    Tensors,
    VersionStatus,
)
from tfsgate.core import protos
from tfsgate.core.dtypes import tf_type
from tfsgate.core.signatures import SignatureSpec, TensorSpec
from tfsgate.core.status import invalid_argument

Decoder = Callable[[SignatureSpec], Tensors]


def model_ref(spec: protos.model_pb2.ModelSpec) -> ModelRef:
    """ModelSpec -> ModelRef; TF Serving refuses a spec naming both a version and a label."""
    has_version = spec.HasField("version")
    label = spec.version_label or None
    if has_version and label is not None:
        raise invalid_argument("Cannot specify both version and version_label in ModelSpec")
    return ModelRef(
        name=spec.name,
        version=spec.version.value if has_version else None,
        label=label,
        signature=spec.signature_name,
    )


def fill_model_spec(target: protos.model_pb2.ModelSpec, served: ServedSpec) -> None:
    target.name = served.name
    target.version.value = served.version
    target.signature_name = served.signature


def predict_decoder(request: protos.predict_pb2.PredictRequest) -> Decoder:
    return lambda signature: decode_predict_inputs(request.inputs, signature)


def predict_response(
    result: PredictResult, signature_outputs: dict[str, TensorSpec], tensor_content: bool
) -> protos.predict_pb2.PredictResponse:
    response = protos.predict_pb2.PredictResponse()
    fill_model_spec(response.model_spec, result.spec)
    outputs = response.outputs
    for key, array in result.outputs.items():
        spec = signature_outputs.get(key)
        ndarray_to_tensor_proto(array, tensor_content, spec.dtype if spec else None, outputs[key])
    return response


# PredictResponse's fields (outputs: map<string, TensorProto> = 1, model_spec = 2) and a map
# entry's (key = 1, value = 2), each length-delimited: the same tags.
_FIRST, _SECOND = b"\x0a", b"\x12"


def predict_answer(
    result: PredictResult, signature_outputs: dict[str, TensorSpec], tensor_content: bool
) -> protos.predict_pb2.PredictResponse | bytes:
    """``predict_response``, or its serialized bytes when an output is large: each large
    tensor's values go from the array into the answer in one copy (``tensor_parts``), the
    fields as protobuf writes them (the map's entries, then the model spec)."""
    if all(array.nbytes < SPLICED_FROM for array in result.outputs.values()):
        return predict_response(result, signature_outputs, tensor_content)
    parts: list[bytes | memoryview] = []
    for key, array in result.outputs.items():
        spec = signature_outputs.get(key)
        dtype = spec.dtype if spec else None
        tensor = tensor_parts(array, tensor_content, dtype)
        if tensor is None:  # strings, or typed values that are not packed
            tensor = [ndarray_to_tensor_proto(array, tensor_content, dtype).SerializeToString()]
        entry = length_delimited(_FIRST, [key.encode()]) + length_delimited(_SECOND, tensor)
        parts += length_delimited(_FIRST, entry)
    model_spec = protos.model_pb2.ModelSpec()
    fill_model_spec(model_spec, result.spec)
    parts += length_delimited(_SECOND, [model_spec.SerializeToString()])
    return b"".join(parts)


def classification_result(result: ClassifyResult) -> protos.classification_pb2.ClassificationResult:
    out = protos.classification_pb2.ClassificationResult()
    for row in result.classes:
        classifications = out.classifications.add()
        for label, score in row:
            classifications.classes.add(label=label, score=score)
    return out


def regression_result(result: RegressResult) -> protos.regression_pb2.RegressionResult:
    out = protos.regression_pb2.RegressionResult()
    for value in result.values:
        out.regressions.add(value=value)
    return out


def classification_response(
    result: ClassifyResult,
) -> protos.classification_pb2.ClassificationResponse:
    response = protos.classification_pb2.ClassificationResponse()
    fill_model_spec(response.model_spec, result.spec)
    response.result.CopyFrom(classification_result(result))
    return response


def regression_response(result: RegressResult) -> protos.regression_pb2.RegressionResponse:
    response = protos.regression_pb2.RegressionResponse()
    fill_model_spec(response.model_spec, result.spec)
    response.result.CopyFrom(regression_result(result))
    return response


def status_response(
    statuses: list[VersionStatus],
) -> protos.get_model_status_pb2.GetModelStatusResponse:
    response = protos.get_model_status_pb2.GetModelStatusResponse()
    state_enum = protos.get_model_status_pb2.ModelVersionStatus.State
    for status in statuses:
        entry = response.model_version_status.add(version=status.version)
        entry.state = state_enum.Value(status.state)
        entry.status.error_code = (
            protos.status_pb2.StatusProto.DESCRIPTOR.fields_by_name["error_code"]
            .enum_type.values_by_name[status.error_code]
            .number
        )
        entry.status.error_message = status.error_message
    return response


def _tensor_info(spec: TensorSpec) -> protos.meta_graph_pb2.TensorInfo:
    info = protos.meta_graph_pb2.TensorInfo(
        name=spec.tensor_name, dtype=tf_type(spec.dtype).tf_enum
    )
    if spec.shape is None:
        info.tensor_shape.unknown_rank = True
    else:
        for size in spec.shape:
            info.tensor_shape.dim.add(size=size)
    return info


def signature_def_map(
    signatures: dict[str, SignatureSpec],
) -> protos.get_model_metadata_pb2.SignatureDefMap:
    out = protos.get_model_metadata_pb2.SignatureDefMap()
    for name, signature in signatures.items():
        sig = out.signature_def[name]
        sig.method_name = signature.method_name
        for key, spec in signature.inputs.items():
            sig.inputs[key].CopyFrom(_tensor_info(spec))
        for key, spec in signature.outputs.items():
            sig.outputs[key].CopyFrom(_tensor_info(spec))
    return out


def metadata_response(
    metadata: ModelMetadata,
) -> protos.get_model_metadata_pb2.GetModelMetadataResponse:
    response = protos.get_model_metadata_pb2.GetModelMetadataResponse()
    fill_model_spec(response.model_spec, metadata.spec)
    response.metadata["signature_def"].Pack(signature_def_map(metadata.signatures))
    return response


def examples(model_input: protos.input_pb2.Input) -> np.ndarray:
    return examples_from_input(model_input)
