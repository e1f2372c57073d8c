"""Every signature kind over REST and gRPC: classify, regress, multi-inference, metadata, several
inputs and outputs, string tensors, versions and labels. Factory models always; TF Serving's own
test models where ``../shared/testdata/tfserving`` exists (CI), skipped with a reason elsewhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from google.protobuf import json_format

from tests.support.servers import ServerProcess
from tfsgate.core import protos

pytestmark = pytest.mark.triton  # starts tritonserver


def post(server: ServerProcess, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.rest_url}/v1/models/{path}", json=body, timeout=30)


def stub(server: ServerProcess) -> Any:
    channel = grpc.insecure_channel(server.grpc_target)
    return protos.prediction_service_pb2_grpc.PredictionServiceStub(channel)


def x_predict_request(model: str, x: float, label: str | None = None) -> Any:
    """Predict x = [[x]] on a half_plus_two model (float input ``x``)."""
    request = protos.predict_pb2.PredictRequest()
    request.model_spec.name = model
    if label is not None:
        request.model_spec.version_label = label
    tensor = request.inputs["x"]
    tensor.dtype = protos.types_pb2.DT_FLOAT
    tensor.tensor_shape.dim.add(size=1)
    tensor.tensor_shape.dim.add(size=1)
    tensor.float_val.append(x)
    return request


def examples_request(message: Any, model: str, signature: str, *values: float) -> Any:
    """A Classification/RegressionRequest over tf.Examples with feature ``x``."""
    request = message()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    request.input.CopyFrom(examples_input(*values))
    return request


def examples_input(*values: float) -> Any:
    model_input = protos.input_pb2.Input()
    for value in values:
        example = model_input.example_list.examples.add()
        example.features.feature["x"].float_list.value.append(value)
    return model_input


# -- factory half_plus_two: all five signatures are served ------------------------------------


def test_rest_classify(server: ServerProcess) -> None:
    body = {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}, {"x": 4.0}]}
    response = post(server, "half_plus_two:classify", body)
    assert response.status_code == 200, response.text
    assert response.json() == {"results": [[["", 3.0]], [["", 4.0]]]}


def test_rest_regress_with_context(server: ServerProcess) -> None:
    body = {"signature_name": "regress_x_to_y2", "context": {"x": 2.0}, "examples": [{}]}
    assert post(server, "half_plus_two:regress", body).json() == {"results": [4.0]}


def test_rest_regress_on_a_predict_signature_is_refused(server: ServerProcess) -> None:
    """Without --enable_signature_method_name_check the tensors decide: serving_default has no
    "inputs" (PreProcessRegression's text, with the signature's DebugString)."""
    response = post(server, "half_plus_two:regress", {"examples": [{"x": 2.0}]})
    assert response.status_code == 400
    assert response.json()["error"].startswith("No regression inputs found in SignatureDef: ")


def test_rest_predict_other_signature(server: ServerProcess) -> None:
    body = {"signature_name": "regress_x2_to_y3", "instances": [[1.0]]}
    assert post(server, "half_plus_two:predict", body).json() == {"predictions": [[3.5]]}


def test_grpc_classify_regress_multi_inference(server: ServerProcess) -> None:
    service = stub(server)
    classify = examples_request(
        protos.classification_pb2.ClassificationRequest, "half_plus_two", "classify_x_to_y", 2.0
    )
    classified = service.Classify(classify, timeout=30)
    assert classified.result.classifications[0].classes[0].score == 3.0
    assert classified.model_spec.version.value == 123

    regress = examples_request(
        protos.regression_pb2.RegressionRequest, "half_plus_two", "regress_x_to_y", 2.0
    )
    assert service.Regress(regress, timeout=30).result.regressions[0].value == 3.0

    multi = protos.inference_pb2.MultiInferenceRequest()
    for signature, method in (("classify_x_to_y", "classify"), ("regress_x_to_y2", "regress")):
        task = multi.tasks.add()
        task.model_spec.name = "half_plus_two"
        task.model_spec.signature_name = signature
        task.method_name = f"tensorflow/serving/{method}"
    multi.input.CopyFrom(examples_input(2.0))
    results = service.MultiInference(multi, timeout=30).results
    assert results[0].classification_result.classifications[0].classes[0].score == 3.0
    assert results[1].regression_result.regressions[0].value == 4.0
    assert [r.model_spec.signature_name for r in results] == ["classify_x_to_y", "regress_x_to_y2"]


def test_metadata_lists_every_signature(server: ServerProcess) -> None:
    response = httpx.get(f"{server.rest_url}/v1/models/half_plus_two/metadata", timeout=10)
    assert response.status_code == 200
    document = response.json()
    assert document["model_spec"] == {
        "name": "half_plus_two",
        "signature_name": "",
        "version": "123",
    }
    signatures = document["metadata"]["signature_def"]["signature_def"]
    assert set(signatures) == {
        "serving_default",
        "classify_x_to_y",
        "regress_x_to_y",
        "regress_x_to_y2",
        "regress_x2_to_y3",
    }
    assert signatures["serving_default"]["inputs"]["x"]["name"] == "x:0"


def test_grpc_metadata_packs_a_signature_def_map(server: ServerProcess) -> None:
    request = protos.get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "half_plus_two"
    request.metadata_field.append("signature_def")
    response = stub(server).GetModelMetadata(request, timeout=30)
    signature_map = protos.get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_map)
    assert signature_map.signature_def["serving_default"].outputs["y"].name == "y:0"
    assert response.model_spec.version.value == 123


def test_grpc_metadata_needs_signature_def_field(server: ServerProcess) -> None:
    request = protos.get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "half_plus_two"
    with pytest.raises(grpc.RpcError) as caught:
        stub(server).GetModelMetadata(request, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# -- TF2 SavedModel: two named float inputs, a string input, two outputs ----------------------


def test_multi_io_row_format(tf2_server: ServerProcess) -> None:
    body = {
        "instances": [
            {"a": [1.0, 2.0], "b": [3.0, 4.0], "tag": "abc"},
            {"a": [0.5, 0.5], "b": [0.5, 0.5], "tag": {"b64": "aGk="}},
        ]
    }
    response = post(tf2_server, "multi_io:predict", body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "predictions": [{"sum": [4.0, 6.0], "tag_length": 3}, {"sum": [1.0, 1.0], "tag_length": 2}]
    }


def test_multi_io_columnar_format(tf2_server: ServerProcess) -> None:
    body = {"inputs": {"a": [[1.0, 2.0]], "b": [[3.0, 4.0]], "tag": ["abcd"]}}
    assert post(tf2_server, "multi_io:predict", body).json() == {
        "outputs": {"sum": [[4.0, 6.0]], "tag_length": [4]}
    }


def test_multi_io_grpc(tf2_server: ServerProcess) -> None:
    request = protos.predict_pb2.PredictRequest()
    request.model_spec.name = "multi_io"
    for key in ("a", "b"):
        tensor = request.inputs[key]
        tensor.dtype = protos.types_pb2.DT_FLOAT
        tensor.tensor_shape.dim.add(size=1)
        tensor.tensor_shape.dim.add(size=2)
        tensor.tensor_content = np.array([1.0, 2.0], dtype="<f4").tobytes()
    tag = request.inputs["tag"]
    tag.dtype = protos.types_pb2.DT_STRING
    tag.tensor_shape.dim.add(size=1)
    tag.string_val.append(b"hello")
    response = stub(tf2_server).Predict(request, timeout=30)
    assert list(response.outputs["sum"].float_val) == [2.0, 4.0]
    assert list(response.outputs["tag_length"].int_val) == [5]


def test_unbatched_signature(tf2_server: ServerProcess) -> None:
    response = post(tf2_server, "unbatched:predict", {"inputs": [1.0, 2.0, 3.0]})
    assert response.status_code == 200, response.text
    assert response.json() == {"outputs": [2.0, 4.0, 6.0]}
    # ONNX Runtime serves it in the model's shared Triton model for unbatched signatures.
    config = tf2_server.home / "model_repository" / "unbatched__.unbatched" / "config.pbtxt"
    assert "max_batch_size" not in config.read_text()  # 0, the proto default, is not written


def test_scalar_signature_rest_and_grpc(tf2_server: ServerProcess) -> None:
    body = {"signature_name": "scalar", "inputs": {"s": 1.5}}
    assert post(tf2_server, "unbatched:predict", body).json() == {
        "outputs": {"label": "1.5", "plus_one": 2.5}
    }
    request = protos.predict_pb2.PredictRequest()
    request.model_spec.name = "unbatched"
    request.model_spec.signature_name = "scalar"
    request.inputs["s"].dtype = protos.types_pb2.DT_FLOAT
    request.inputs["s"].float_val.append(1.5)
    response = stub(tf2_server).Predict(request, timeout=30)
    assert list(response.outputs["plus_one"].float_val) == [2.5]
    assert len(response.outputs["plus_one"].tensor_shape.dim) == 0
    assert list(response.outputs["label"].string_val) == [b"1.5"]


# -- TF Serving's own test models (CI) ---------------------------------------------------------


def test_tfserving_predict_rest(tfserving_server: ServerProcess) -> None:
    assert post(tfserving_server, "default:predict", {"instances": [1.0, 2.0, 5.0]}).json() == {
        "predictions": [2.5, 3.0, 4.5]
    }


def test_tfserving_grpc_predict_and_status(tfserving_server: ServerProcess) -> None:
    request = x_predict_request("default", 2.0)
    response = stub(tfserving_server).Predict(request, timeout=30)
    assert list(response.outputs["y"].float_val) == [3.0]
    spec = response.model_spec
    assert (spec.name, spec.signature_name, spec.version.value) == (
        "default",
        "serving_default",
        123,
    )
    status = httpx.get(f"{tfserving_server.rest_url}/v1/models/default", timeout=10).json()
    assert status == {
        "model_version_status": [
            {
                "version": "123",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }


def test_tfserving_classify_and_regress_rest(tfserving_server: ServerProcess) -> None:
    classify = {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]}
    assert post(tfserving_server, "default:classify", classify).json() == {"results": [[["", 3.0]]]}
    regress = {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]}
    assert post(tfserving_server, "default:regress", regress).json() == {"results": [3.0]}


def test_tfserving_grpc_classify_regress_multi(tfserving_server: ServerProcess) -> None:
    service = stub(tfserving_server)
    classify = examples_request(
        protos.classification_pb2.ClassificationRequest, "default", "classify_x_to_y", 2.0
    )
    classified = service.Classify(classify, timeout=30)
    assert classified.result.classifications[0].classes[0].score == 3.0
    assert (classified.model_spec.name, classified.model_spec.version.value) == ("default", 123)

    regress = examples_request(
        protos.regression_pb2.RegressionRequest, "default", "regress_x_to_y", 2.0
    )
    regressed = service.Regress(regress, timeout=30)
    assert regressed.result.regressions[0].value == 3.0
    assert regressed.model_spec.version.value == 123

    multi = protos.inference_pb2.MultiInferenceRequest()
    task = multi.tasks.add()
    task.model_spec.name = "default"
    task.model_spec.signature_name = "regress_x_to_y"
    task.method_name = "tensorflow/serving/regress"
    multi.input.CopyFrom(examples_input(2.0))
    (result,) = service.MultiInference(multi, timeout=30).results
    assert result.regression_result.regressions[0].value == 3.0
    assert result.model_spec.version.value == 123


def test_tfserving_metadata_equals_reference(
    tfserving_server: ServerProcess, shared_testdata: Path
) -> None:
    expected = json.loads((shared_testdata / "half_plus_two_model_metadata.json").read_text())
    response = httpx.get(f"{tfserving_server.rest_url}/v1/models/default/metadata", timeout=10)
    assert response.json() == expected


def test_tfserving_two_versions_metadata_equals_reference(
    tfserving_server: ServerProcess, shared_testdata: Path
) -> None:
    reference = shared_testdata / "saved_model_half_plus_two_2_versions_metadata.json"
    expected = json.loads(reference.read_text())
    url = f"{tfserving_server.rest_url}/v1/models/saved_model_half_plus_two_2_versions/versions/123/metadata"
    assert httpx.get(url, timeout=10).json() == expected


def test_tfserving_grpc_metadata_matches_reference(
    tfserving_server: ServerProcess, shared_testdata: Path
) -> None:
    request = protos.get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "default"
    request.metadata_field.append("signature_def")
    response = stub(tfserving_server).GetModelMetadata(request, timeout=30)
    signature_map = protos.get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_map)
    expected = json.loads((shared_testdata / "half_plus_two_model_metadata.json").read_text())
    got = json_format.MessageToDict(signature_map, preserving_proto_field_name=True)
    assert set(got["signature_def"]) == set(expected["metadata"]["signature_def"]["signature_def"])


@pytest.mark.parametrize(
    "path", ["versions/123", "versions/124", "labels/stable", "labels/canary", ""]
)
def test_tfserving_both_versions_and_labels_answer(
    tfserving_server: ServerProcess, path: str
) -> None:
    name = "saved_model_half_plus_two_2_versions"
    target = f"{name}/{path}:predict" if path else f"{name}:predict"
    response = post(tfserving_server, target, {"instances": [2.0]})
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": [3.0]}


@pytest.mark.parametrize(("label", "version"), [("stable", 123), ("canary", 124)])
def test_tfserving_grpc_version_label(
    tfserving_server: ServerProcess, label: str, version: int
) -> None:
    request = x_predict_request("saved_model_half_plus_two_2_versions", 2.0, label)
    response = stub(tfserving_server).Predict(request, timeout=30)
    assert list(response.outputs["y"].float_val) == [3.0]
    assert response.model_spec.version.value == version


def test_tfserving_status_lists_both_versions(tfserving_server: ServerProcess) -> None:
    url = f"{tfserving_server.rest_url}/v1/models/saved_model_half_plus_two_2_versions"
    statuses = httpx.get(url, timeout=10).json()["model_version_status"]
    assert sorted(s["version"] for s in statuses) == ["123", "124"]
    assert {s["state"] for s in statuses} == {"AVAILABLE"}
