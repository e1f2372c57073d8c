"""TF-Serving and TensorFlow protobuf modules without executing TensorFlow.

``tensorflow_serving.apis`` imports ``tensorflow.core.*`` proto modules, which live inside the
``tensorflow`` package; importing that package normally runs all of TensorFlow (560 MB RSS, 3 s).
The proto modules only need protobuf, so when TensorFlow is not already loaded we register a bare
``tensorflow`` package (its ``__path__`` pointing at the installed one) before importing them.
Import protos from here, never from ``tensorflow_serving`` directly, in gateway processes.
"""

from __future__ import annotations

import importlib.util
import sys
import types


def _register_bare_tensorflow() -> types.ModuleType | None:
    if "tensorflow" in sys.modules:
        return None
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError("the tensorflow package is not installed")
    bare = types.ModuleType("tensorflow")
    bare.__path__ = list(spec.submodule_search_locations)
    bare.__file__ = spec.origin
    sys.modules["tensorflow"] = bare
    return bare


_bare = _register_bare_tensorflow()

from tensorflow.core.example import example_pb2, feature_pb2  # noqa: E402
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2  # noqa: E402
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2, saved_model_pb2  # noqa: E402
from tensorflow_serving.apis import (  # noqa: E402
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    input_pb2,
    logging_pb2,
    model_management_pb2,
    model_pb2,
    model_service_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_log_pb2,  # imports session_service_pb2 -> tensorflow.core.protobuf.config_pb2
    prediction_service_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
    status_pb2,
)
from tensorflow_serving.config import model_server_config_pb2  # noqa: E402

# The proto modules stay loaded; the bare package goes, so a later ``import tensorflow`` (tests,
# a notebook) still gets the real one, which then reuses these already-loaded proto modules.
if _bare is not None and sys.modules.get("tensorflow") is _bare:
    del sys.modules["tensorflow"]

__all__ = [
    "classification_pb2",
    "config_pb2",
    "example_pb2",
    "feature_pb2",
    "get_model_metadata_pb2",
    "get_model_status_pb2",
    "inference_pb2",
    "input_pb2",
    "logging_pb2",
    "meta_graph_pb2",
    "model_management_pb2",
    "model_pb2",
    "model_server_config_pb2",
    "model_service_pb2",
    "model_service_pb2_grpc",
    "predict_pb2",
    "prediction_log_pb2",
    "prediction_service_pb2",
    "prediction_service_pb2_grpc",
    "regression_pb2",
    "saved_model_pb2",
    "status_pb2",
    "tensor_pb2",
    "tensor_shape_pb2",
    "types_pb2",
]
