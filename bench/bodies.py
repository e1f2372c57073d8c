"""Request bodies for every path, written once to files the load generators replay.

The same tensor travels four ways: TF Serving's REST row format (tfsgate and the naive server),
Triton's KServe-v2 JSON, TF Serving's ``PredictRequest`` with ``tensor_content``, and Triton's
``ModelInferRequest`` with ``raw_input_contents`` (what tfsgate itself sends upstream). gRPC
bodies are length-prefixed messages (1 byte compressed flag, 4 bytes big-endian length), as
the gRPC-over-HTTP/2 protocol frames them.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tritonclient.grpc import service_pb2

from tfsgate.core import protos
from tfsgate.core.naming import shared_model_name, tensor_prefix, triton_model_name
from tfsgate.core.signatures import DEFAULT_SIGNATURE

PREDICT_PATH = "/tensorflow.serving.PredictionService/Predict"
MODEL_INFER_PATH = "/inference.GRPCInferenceService/ModelInfer"


@dataclass(frozen=True)
class Case:
    """One model input: a TF Serving model name, the Triton model serving its signature, the
    signature's tensor names (as TF Serving's bodies carry them) and the data. Triton's own bodies
    name the tensors with ``triton_prefix`` in front (``triton_input``, ``triton_output``)."""

    model: str
    triton_model: str
    version: int
    input_name: str
    output_name: str
    array: np.ndarray
    triton_prefix: str = ""  # of the tensor names in triton_model; "" in a model of its own

    @classmethod
    def of(
        cls,
        model: str,
        version: int,
        input_name: str,
        output_name: str,
        array: np.ndarray,
        *,
        shared: bool = True,
        signature: str = DEFAULT_SIGNATURE,
        batched: bool = True,
    ) -> Case:
        """``shared``: a signature ONNX Runtime serves on a CPU Triton (the ``auto`` runner's
        choice for the example models), in the model's shared Triton model with its tensors
        under the signature's prefix; else in a model of its own (the TensorFlow or TFLite
        runner, a GPU Triton), ``<model>__<signature>``, unprefixed (tfsgate/core/naming.py)."""
        if not shared:
            triton_model = triton_model_name(model, signature)
            return cls(model, triton_model, version, input_name, output_name, array)
        triton_model, prefix = shared_model_name(model, batched), tensor_prefix(signature)
        return cls(model, triton_model, version, input_name, output_name, array, prefix)

    @property
    def triton_input(self) -> str:
        return self.triton_prefix + self.input_name

    @property
    def triton_output(self) -> str:
        return self.triton_prefix + self.output_name

    @property
    def slug(self) -> str:
        return f"{self.model}-{self.array.size}"


@dataclass(frozen=True)
class Bodies:
    rest: Path  # TF Serving REST {"instances": ...}
    triton_json: Path  # KServe v2 JSON
    predict: Path  # framed PredictRequest
    model_infer: Path  # framed ModelInferRequest


def frame(message: bytes) -> bytes:
    return b"\0" + struct.pack(">I", len(message)) + message


def unframe(body: bytes) -> bytes:
    (length,) = struct.unpack(">I", body[1:5])
    return body[5 : 5 + length]


def predict_request(case: Case) -> protos.predict_pb2.PredictRequest:
    request = protos.predict_pb2.PredictRequest()
    request.model_spec.name = case.model
    tensor = request.inputs[case.input_name]
    tensor.dtype = protos.types_pb2.DT_FLOAT
    for size in case.array.shape:
        tensor.tensor_shape.dim.add(size=size)
    tensor.tensor_content = np.ascontiguousarray(case.array, dtype=np.float32).tobytes()
    return request


def model_infer_request(case: Case) -> service_pb2.ModelInferRequest:
    request = service_pb2.ModelInferRequest(
        model_name=case.triton_model, model_version=str(case.version)
    )
    request.inputs.add(name=case.triton_input, datatype="FP32", shape=list(case.array.shape))
    request.outputs.add(name=case.triton_output)
    request.raw_input_contents.append(np.ascontiguousarray(case.array, np.float32).tobytes())
    return request


def write_bodies(case: Case, directory: Path) -> Bodies:
    directory.mkdir(parents=True, exist_ok=True)
    values = case.array.tolist()
    paths = Bodies(
        rest=directory / f"{case.slug}.rest.json",
        triton_json=directory / f"{case.slug}.triton.json",
        predict=directory / f"{case.slug}.predict.bin",
        model_infer=directory / f"{case.slug}.infer.bin",
    )
    paths.rest.write_text(json.dumps({"instances": values}))
    triton = {
        "inputs": [
            {
                "name": case.triton_input,
                "shape": list(case.array.shape),
                "datatype": "FP32",
                "data": case.array.ravel().tolist(),
            }
        ],
        "outputs": [{"name": case.triton_output}],
    }
    paths.triton_json.write_text(json.dumps(triton))
    paths.predict.write_bytes(frame(predict_request(case).SerializeToString()))
    paths.model_infer.write_bytes(frame(model_infer_request(case).SerializeToString()))
    return paths
