"""``--prefer_tflite_model``: a version's ``model.tflite`` served by LiteRT inside a real Triton, as
TF Serving serves it (``saved_model_bundle_factory.cc``), over REST and gRPC (the official
tensorflow-serving-api stubs); without the flag the SavedModel beside it is served.

The factory's TFLite model answers y = 0.5x + 2 (and z = 3x); the SavedModel in the same directory
answers y = 0.5x + 3, so every answer shows which file served it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import pytest

from tests.support.models import write_models
from tests.support.servers import ServerProcess, free_port, start_server
from tfsgate.core import protos

pytestmark = pytest.mark.triton  # starts tritonserver

TOKEN = "tflite-secret"
SHARED = {  # TF Serving's own TFLite test models, where ../shared has them
    "tfs_tflite": "saved_model_half_plus_two_tflite",
    "tfs_tflite_sigdef": "saved_model_half_plus_two_tflite_with_sigdef",
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tflite-models")
    write_models(
        ("tflite", root / "both" / "1", {}),
        ("tflite", root / "lite_only" / "1", {"with_saved_model": False}),
        ("tflite", root / "tf1" / "1", {"with_saved_model": False, "tf1": True}),
        ("tflite", root / "own_batching" / "1", {"with_saved_model": False}),
    )
    own = "max_batch_size { value: 8 } batch_timeout_micros { value: 700 }\n"
    (root / "own_batching" / "1" / "batching_params.pbtxt").write_text(own)
    return root


def config_file(root: Path, models: dict[str, Path]) -> Path:
    lines = [
        f'  config {{ name: "{name}" base_path: "{base}" model_platform: "tensorflow" }}'
        for name, base in models.items()
    ]
    config = root / "models.config"
    config.write_text("model_config_list {\n" + "\n".join(lines) + "\n}\n")
    return config


@pytest.fixture(scope="module")
def lite_server(
    models: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, str]]:
    root = tmp_path_factory.mktemp("tflite-serve")
    served = {name: models / name for name in ("both", "lite_only", "tf1", "own_batching")}
    shared = Path(__file__).resolve().parents[2] / "../shared/testdata/tfserving"
    served.update({n: shared / d for n, d in SHARED.items() if (shared / d).is_dir()})
    admin_port = free_port()
    args = [
        f"--model_config_file={config_file(root, served)}",
        f"--admin_port={admin_port}",
        "--prefer_tflite_model=true",
        "--num_tflite_pools=2",
        "--enable_batching",
        "--enable_per_model_batching_parameters",
    ]
    env = {"TFSGATE_ADMIN_TOKEN": TOKEN}
    with start_server(root / "home", args, model="both", env=env) as server:
        yield server, f"http://127.0.0.1:{admin_port}/v1/admin"


def rest(server: ServerProcess, path: str, body: object | None = None) -> httpx.Response:
    url = f"{server.rest_url}/v1/models/{path}"
    if body is None:
        return httpx.get(url, timeout=60)
    return httpx.post(url, json=body, timeout=60)


def grpc_predict(
    server: ServerProcess, model: str, inputs: dict[str, list[float]], output_filter: list[str]
) -> dict[str, list[float]]:
    request = protos.predict_pb2.PredictRequest()
    request.model_spec.name = model
    for key, values in inputs.items():
        tensor = request.inputs[key]
        tensor.dtype = protos.types_pb2.DT_FLOAT
        tensor.tensor_shape.dim.add().size = len(values)
        tensor.tensor_shape.dim.add().size = 1
        tensor.float_val.extend(values)
    request.output_filter.extend(output_filter)
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = protos.prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=60)
    assert response.model_spec.name == model
    return {key: list(tensor.float_val) for key, tensor in response.outputs.items()}


def test_the_tflite_model_is_served_over_rest(lite_server: tuple[ServerProcess, str]) -> None:
    server, _ = lite_server
    answer = rest(server, "both:predict", {"instances": [[1.0], [4.0]]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": [{"y": [2.5], "z": [3.0]}, {"y": [4.0], "z": [12.0]}]}
    columnar = rest(server, "lite_only:predict", {"inputs": {"x": [[2.0]]}})
    assert columnar.json() == {"outputs": {"y": [[3.0]], "z": [[6.0]]}}


def test_the_tflite_model_is_served_over_grpc(lite_server: tuple[ServerProcess, str]) -> None:
    server, _ = lite_server
    assert grpc_predict(server, "both", {"x": [1.0, 2.0, 3.0]}, ["y"]) == {"y": [2.5, 3.0, 3.5]}
    assert grpc_predict(server, "lite_only", {"x": [1.0]}, []) == {"y": [2.5], "z": [3.0]}


def test_concurrent_requests_each_get_their_own_rows(
    lite_server: tuple[ServerProcess, str],
) -> None:
    """Triton merges concurrent requests into one invoke; the runner splits the rows back."""
    server, _ = lite_server

    def ask(i: int) -> tuple[int, object]:
        rows = [[float(i)]] * (1 + i % 3)
        answer = rest(server, "both:predict", {"inputs": {"x": rows}})
        return i, answer.json()

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = dict(pool.map(ask, range(48)))
    for i, answer in answers.items():
        n = 1 + i % 3
        assert answer == {"outputs": {"y": [[0.5 * i + 2.0]] * n, "z": [[3.0 * i]] * n}}, i


def test_signatures_come_from_the_signature_runner(lite_server: tuple[ServerProcess, str]) -> None:
    server, _ = lite_server
    metadata = rest(server, "both/metadata").json()
    signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"
    assert set(signature["inputs"]) == {"x"}
    assert set(signature["outputs"]) == {"y", "z"}
    assert signature["inputs"]["x"]["dtype"] == "DT_FLOAT"
    assert signature["inputs"]["x"]["tensor_shape"]["dim"][0]["size"] == "-1"


def test_a_model_without_signature_runners_gets_tf_servings_generated_signature(
    lite_server: tuple[ServerProcess, str],
) -> None:
    server, _ = lite_server
    metadata = rest(server, "tf1/metadata").json()
    signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert (set(signature["inputs"]), set(signature["outputs"])) == ({"x"}, {"y"})
    assert grpc_predict(server, "tf1", {"x": [1.0, 2.0]}, ["y"]) == {"y": [2.5, 3.0]}


@pytest.mark.parametrize("model", sorted(SHARED))
def test_tf_servings_own_tflite_models(lite_server: tuple[ServerProcess, str], model: str) -> None:
    """TF Serving's tensorflow_model_server_test: testPredictOnTfLite and
    testPredictWithSignatureDefOnTfLite (input x, output y, 0.5x + 2)."""
    server, _ = lite_server
    if rest(server, model).status_code == 404:
        pytest.skip("TF Serving's test models are not in ../shared")
    assert grpc_predict(server, model, {"x": [2.0]}, []) == {"y": [3.0]}
    answer = rest(server, f"{model}:predict", {"instances": [[1.0], [2.0]]})
    assert answer.json() == {"predictions": [[2.5], [3.0]]}


def test_admin_api_and_versions_command_report_the_tflite_runner(
    lite_server: tuple[ServerProcess, str],
) -> None:
    _, api = lite_server
    admin_url = api.removesuffix("/v1/admin")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    model = httpx.get(f"{api}/models/both", headers=headers, timeout=30).json()
    (version,) = model["versions"]
    assert version["state"] == "AVAILABLE"
    assert version["signatures"] == [
        {
            "name": "serving_default",
            "runner": "tflite",
            "max_abs_error": None,
            "fallback_reason": "",
            "parity_cases": 0,
        }
    ]
    listed = subprocess.run(
        [sys.executable, "-m", "tfsgate.cli", "versions", "both", f"--admin_url={admin_url}"],
        env={**os.environ, "TFSGATE_ADMIN_TOKEN": TOKEN},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert ["serving_default", "tflite"] in [row[:2] for row in rows], listed.stdout


def test_num_tflite_pools_is_the_instances_of_tflite_signatures(
    lite_server: tuple[ServerProcess, str],
) -> None:
    """The config Triton was given (the reconciler keeps config.pbtxt equal to it)."""
    server, _ = lite_server
    config = (
        server.home / "model_repository" / "both__serving_default" / "config.pbtxt"
    ).read_text()
    assert "count: 2" in config and "KIND_CPU" in config


def test_per_model_batching_parameters(lite_server: tuple[ServerProcess, str]) -> None:
    """--enable_per_model_batching_parameters: a version's batching_params.pbtxt is its model's
    batching; a model without one is not batched (no queue delay), as in TF Serving."""
    server, _ = lite_server
    repository = server.home / "model_repository"
    own = (repository / "own_batching__serving_default" / "config.pbtxt").read_text()
    assert "preferred_batch_size: 8" in own and "max_queue_delay_microseconds: 700" in own
    other = (repository / "both__serving_default" / "config.pbtxt").read_text()
    assert "max_queue_delay_microseconds" not in other  # 0: proto3 text omits it
    answer = rest(server, "own_batching:predict", {"instances": [[2.0]]})
    assert answer.json() == {"predictions": [{"y": [3.0], "z": [6.0]}]}


def test_without_the_flag_the_saved_model_is_served(
    models: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """TF Serving's default: model.tflite is ignored, saved_model.pb served."""
    root = tmp_path_factory.mktemp("tflite-off")
    config = config_file(root, {"both": models / "both"})
    with start_server(root / "home", [f"--model_config_file={config}"], model="both") as server:
        answer = rest(server, "both:predict", {"instances": [[1.0]]})
        assert answer.json() == {"predictions": [[3.5]]}
        metadata = rest(server, "both/metadata").json()
        signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
        assert set(signature["outputs"]) == {"y"}
