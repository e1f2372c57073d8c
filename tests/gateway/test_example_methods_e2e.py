"""Classify, Regress and MultiInference as TF Serving's servables run them, over real servers.

A TF2 ``tf.saved_model.save`` model marks its classify/regress signatures predict; TF Serving runs
them anyway unless ``--enable_signature_method_name_check``. Tensors are found by their signature
keys (``inputs``, ``classes``/``scores``, ``outputs``) and every refusal has TF Serving's text.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from tests.support.models import write_model
from tests.support.servers import ServerProcess, start_server
from tfsgate.core import protos

pytestmark = pytest.mark.triton  # starts tritonserver

CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"


@pytest.fixture(scope="module")
def tf2_examples(model_root: Path) -> Path:
    base = model_root / "tf2_examples"
    if not base.exists():
        write_model("write_tf2_examples", base / "7")
    return base


def _config(home: Path, models: dict[str, Path]) -> Path:
    config = home / "models.config"
    entries = "".join(
        f'  config {{ name: "{name}" base_path: "{path}" model_platform: "tensorflow" }}\n'
        for name, path in models.items()
    )
    config.write_text(f"model_config_list {{\n{entries}}}\n")
    return config


@pytest.fixture(scope="module")
def examples_server(
    tf2_examples: Path, half_plus_two: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("examples-home")
    config = _config(home, {"tf2": tf2_examples, "tf1": half_plus_two})
    with start_server(home, [f"--model_config_file={config}"], model="tf2") as server:
        yield server


@pytest.fixture(scope="module")
def checking_server(
    tf2_examples: Path, half_plus_two: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("examples-check-home")
    config = _config(home, {"tf2": tf2_examples, "tf1": half_plus_two})
    args = [f"--model_config_file={config}", "--enable_signature_method_name_check"]
    with start_server(home, args, model="tf2") as server:
        yield server


def examples_input(*values: float) -> Any:
    model_input = protos.input_pb2.Input()
    for value in values:
        model_input.example_list.examples.add().features.feature["x"].float_list.value.append(value)
    return model_input


def request(kind: str, model: str, signature: str, *values: float) -> Any:
    message = (
        protos.classification_pb2.ClassificationRequest()
        if kind == "Classify"
        else protos.regression_pb2.RegressionRequest()
    )
    message.model_spec.name = model
    message.model_spec.signature_name = signature
    message.input.CopyFrom(examples_input(*values))
    return message


def call(server: ServerProcess, method: str, message: Any) -> Any:
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = protos.prediction_service_pb2_grpc.PredictionServiceStub(channel)
        return getattr(stub, method)(message, timeout=60)


def refused(server: ServerProcess, method: str, message: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call(server, method, message)
    return caught.value.code(), caught.value.details()


def multi(model: str, *tasks: tuple[str, str], values: tuple[float, ...] = (2.0,)) -> Any:
    message = protos.inference_pb2.MultiInferenceRequest()
    for signature, method in tasks:
        task = message.tasks.add()
        task.model_spec.name = model
        task.model_spec.signature_name = signature
        task.method_name = method
    message.input.CopyFrom(examples_input(*values))
    return message


# -- TF2 predict-named signatures run -----------------------------------------------------------


def test_classify_on_a_predict_named_signature(examples_server: ServerProcess) -> None:
    result = call(examples_server, "Classify", request("Classify", "tf2", "classify_x_to_y", 2, 4))
    scores = [[c.score for c in row.classes] for row in result.result.classifications]
    assert scores == [[3.0], [4.0]]
    assert (result.model_spec.name, result.model_spec.version.value) == ("tf2", 7)
    assert result.model_spec.signature_name == "classify_x_to_y"


def test_classes_and_scores(examples_server: ServerProcess) -> None:
    result = call(examples_server, "Classify", request("Classify", "tf2", "classify_classes", 0))
    (row,) = result.result.classifications
    assert [(c.label, round(c.score, 3)) for c in row.classes] == [("low", 0.5), ("high", 0.5)]


def test_regress_on_a_predict_named_signature(examples_server: ServerProcess) -> None:
    result = call(examples_server, "Regress", request("Regress", "tf2", "regress_x_to_y", 2, 6))
    assert [r.value for r in result.result.regressions] == [3.0, 5.0]


def test_rest_classify_and_regress(examples_server: ServerProcess) -> None:
    url = f"{examples_server.rest_url}/v1/models/tf2"
    body = {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]}
    assert httpx.post(f"{url}:classify", json=body, timeout=60).json() == {"results": [[["", 3.0]]]}
    body = {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]}
    assert httpx.post(f"{url}:regress", json=body, timeout=60).json() == {"results": [3.0]}


def test_multi_inference_on_predict_named_signatures(examples_server: ServerProcess) -> None:
    message = multi("tf2", ("classify_x_to_y", CLASSIFY), ("regress_x_to_y", REGRESS))
    result = call(examples_server, "MultiInference", message)
    classified, regressed = result.results
    assert classified.classification_result.classifications[0].classes[0].score == 3.0
    assert regressed.regression_result.regressions[0].value == 3.0
    assert [r.model_spec.signature_name for r in result.results] == [
        "classify_x_to_y",
        "regress_x_to_y",
    ]
    assert {r.model_spec.version.value for r in result.results} == {7}


def test_classify_named_tf1_signatures_still_run(examples_server: ServerProcess) -> None:
    result = call(examples_server, "Classify", request("Classify", "tf1", "classify_x_to_y", 2))
    assert result.result.classifications[0].classes[0].score == 3.0


# -- TF Serving's refusals ----------------------------------------------------------------------


def test_signature_errors(examples_server: ServerProcess) -> None:
    code, details = refused(examples_server, "Classify", request("Classify", "tf2", "nope", 1))
    assert (code, details) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "No signature was found with the name: nope",
    )
    code, details = refused(
        examples_server, "Regress", request("Regress", "tf2", "regress_named_y", 1)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("No regression outputs found in SignatureDef: inputs {\n")
    assert 'outputs {\n  key: "y"\n' in details
    assert details.endswith('method_name: "tensorflow/serving/predict"\n')
    code, details = refused(
        examples_server, "Classify", request("Classify", "tf2", "classify_named_examples", 1)
    )
    assert details.startswith("No classification inputs found in SignatureDef: ")
    code, details = refused(
        examples_server, "Classify", request("Classify", "tf2", "regress_x_to_y", 1)
    )
    assert details.startswith(
        'Expected classification signature outputs to contain at least one of "classes" or '
        '"scores". Signature was: '
    )
    code, details = refused(
        examples_server, "Regress", request("Regress", "tf2", "classify_classes", 1)
    )
    assert details == "Expected one output Tensor."
    # A float "inputs": TF Serving feeds the examples anyway and the engine refuses them.
    code, details = refused(
        examples_server, "Regress", request("Regress", "tf2", "regress_float_inputs", 1)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "inputs" in details


def test_signature_is_checked_before_the_input(examples_server: ServerProcess) -> None:
    empty = request("Classify", "tf2", "nope")
    assert refused(examples_server, "Classify", empty)[1].startswith("No signature was found")
    empty = request("Classify", "tf2", "classify_x_to_y")
    assert refused(examples_server, "Classify", empty) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Input is empty.",
    )


@pytest.mark.parametrize(
    ("tasks", "code", "details"),
    [
        (
            [("classify_x_to_y", CLASSIFY), ("classify_x_to_y", REGRESS)],
            grpc.StatusCode.INVALID_ARGUMENT,
            "Duplicate evaluation of signature: classify_x_to_y",
        ),
        (  # each task is checked in turn: the first fails before the duplicate is seen
            [("", CLASSIFY), ("serving_default", REGRESS)],
            grpc.StatusCode.INVALID_ARGUMENT,
            "No classification inputs found in SignatureDef: ",
        ),
        (
            [("classify_x_to_y", CLASSIFY), ("nope", REGRESS)],
            grpc.StatusCode.INVALID_ARGUMENT,
            "Requested signature not found in model graph: nope",
        ),
        (
            [("classify_x_to_y", CLASSIFY), ("regress_x_to_y", "tensorflow/serving/predict")],
            grpc.StatusCode.UNIMPLEMENTED,
            "Unsupported signature method_name: tensorflow/serving/predict",
        ),
        (
            [("regress_named_y", REGRESS)],
            grpc.StatusCode.INVALID_ARGUMENT,
            "No regression outputs found in SignatureDef: ",
        ),
        ([], grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec"),
    ],
    ids=["duplicate", "in-order", "missing", "predict", "aliases", "no-tasks"],
)
def test_multi_inference_refusals(
    examples_server: ServerProcess,
    tasks: list[tuple[str, str]],
    code: grpc.StatusCode,
    details: str,
) -> None:
    got = refused(examples_server, "MultiInference", multi("tf2", *tasks))
    assert got[0] == code
    assert got[1].startswith(details)


def test_multi_inference_one_model(examples_server: ServerProcess) -> None:
    message = multi("tf2", ("classify_x_to_y", CLASSIFY))
    task = message.tasks.add()
    task.model_spec.name, task.method_name = "tf1", REGRESS
    assert refused(examples_server, "MultiInference", message) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "All ModelSpecs in a MultiInferenceRequest must access the same model name.",
    )


# -- --enable_signature_method_name_check --------------------------------------------------------


def test_method_name_check_refuses_predict_named(checking_server: ServerProcess) -> None:
    code, details = refused(
        checking_server, "Classify", request("Classify", "tf2", "classify_x_to_y", 2)
    )
    assert (code, details) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Expected classification signature method_name to be tensorflow/serving/classify. "
        "Was: tensorflow/serving/predict",
    )
    code, details = refused(
        checking_server, "Regress", request("Regress", "tf2", "regress_x_to_y", 2)
    )
    assert details == (
        "Expected regression signature method_name to be tensorflow/serving/regress. "
        "Was: tensorflow/serving/predict"
    )
    result = call(checking_server, "Classify", request("Classify", "tf1", "classify_x_to_y", 2))
    assert result.result.classifications[0].classes[0].score == 3.0


# -- TF Serving's own TF2 model (testClassifyTf2, testRegressTf2, testMultiInferenceTf2) --------


@pytest.fixture(scope="module")
def tfserving_tf2(
    shared_testdata: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("tfserving-tf2-home")
    base = shared_testdata / "saved_model_half_plus_two_tf2_cpu"
    with start_server(home, [f"--model_base_path={base}"]) as server:
        yield server


def test_tf_serving_tf2_model(tfserving_tf2: ServerProcess) -> None:
    classified = call(
        tfserving_tf2, "Classify", request("Classify", "default", "classify_x_to_y", 2)
    )
    assert classified.result.classifications[0].classes[0].score == 3.0
    regressed = call(tfserving_tf2, "Regress", request("Regress", "default", "regress_x_to_y", 2))
    assert regressed.result.regressions[0].value == 3.0
    message = multi("default", ("regress_x_to_y", REGRESS), ("classify_x_to_y", CLASSIFY))
    result = call(tfserving_tf2, "MultiInference", message)
    assert result.results[0].regression_result.regressions[0].value == 3.0
    assert result.results[1].classification_result.classifications[0].classes[0].score == 3.0
