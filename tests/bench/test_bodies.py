"""The benchmark's request bodies: TF Serving's keep the signature's tensor names, Triton's name
the Triton model that serves the signature and its tensors as they are named there."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from tritonclient.grpc import service_pb2

from bench.bodies import Case, unframe, write_bodies
from tfsgate.core import protos

X = np.array([[1.0], [2.0], [5.0]], np.float32)


def _read(case: Case, directory: Path) -> tuple[Any, Any, Any, service_pb2.ModelInferRequest]:
    bodies = write_bodies(case, directory)
    rest = json.loads(bodies.rest.read_text())
    triton = json.loads(bodies.triton_json.read_text())
    predict = protos.predict_pb2.PredictRequest.FromString(unframe(bodies.predict.read_bytes()))
    infer = service_pb2.ModelInferRequest.FromString(unframe(bodies.model_infer.read_bytes()))
    return rest, triton, predict, infer


def test_shared_model_bodies_prefix_only_triton_tensors(tmp_path: Path) -> None:
    case = Case.of("half_plus_two", 2, "x", "y", X)
    assert (case.triton_model, case.triton_prefix) == ("half_plus_two", "serving_default/")
    rest, triton, predict, infer = _read(case, tmp_path)
    assert rest == {"instances": X.tolist()}
    assert [i["name"] for i in triton["inputs"]] == ["serving_default/x"]
    assert triton["outputs"] == [{"name": "serving_default/y"}]
    assert predict.model_spec.name == "half_plus_two"
    assert list(predict.inputs) == ["x"]
    assert (infer.model_name, infer.model_version) == ("half_plus_two", "2")
    assert [i.name for i in infer.inputs] == ["serving_default/x"]
    assert [o.name for o in infer.outputs] == ["serving_default/y"]


def test_unbatched_shared_model_name() -> None:
    case = Case.of("scale", 1, "v", "doubled", X[0], signature="double", batched=False)
    assert (case.triton_model, case.triton_input) == ("scale__.unbatched", "double/v")


def test_own_model_bodies_keep_tensor_names(tmp_path: Path) -> None:
    case = Case.of("mlp", 1, "x", "output_0", X, shared=False)
    assert (case.triton_model, case.triton_prefix) == ("mlp__serving_default", "")
    _, triton, _, infer = _read(case, tmp_path)
    assert [i["name"] for i in triton["inputs"]] == ["x"]
    assert triton["outputs"] == [{"name": "output_0"}]
    assert infer.model_name == "mlp__serving_default"
    assert ([i.name for i in infer.inputs], [o.name for o in infer.outputs]) == (
        ["x"],
        ["output_0"],
    )
