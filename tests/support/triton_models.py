"""Tiny Triton models for container tests, written with Triton's ModelConfig protobuf."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

# Runs inside Triton's python backend stub: TensorFlow imported as tfsgate's runners import it.
DOUBLER = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        import tensorflow as tf

        self.double = lambda x: (tf.constant(x) * 2).numpy()

    def execute(self, requests):
        out = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "x").as_numpy()
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("y", self.double(x))]))
        return out
"""


def write_doubler(repository: Path, name: str = "doubler") -> Path:
    """``repository/name``: a python-backend model, FP32 x -> y = 2x, batched."""
    config = model_config_pb2.ModelConfig(name=name, backend="python", max_batch_size=8)
    config.input.add(name="x", data_type=model_config_pb2.TYPE_FP32, dims=[1])
    config.output.add(name="y", data_type=model_config_pb2.TYPE_FP32, dims=[1])
    config.instance_group.add(kind=model_config_pb2.ModelInstanceGroup.KIND_CPU, count=1)
    (repository / name / "1").mkdir(parents=True)
    (repository / name / "config.pbtxt").write_text(text_format.MessageToString(config))
    (repository / name / "1" / "model.py").write_text(DOUBLER)
    return repository / name
