"""TF Serving's own test models through ``tfsgate serve``: every one loads (half_plus_three, a
TF 1.0 graph, included) and answers as TF Serving does; which runner serves each signature is
recorded. Skipped where ../shared is absent; test_engine_serve.py covers the same ground with
factory-made models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.admin_http import admin, serve_with_admin
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.triton  # starts tritonserver

MODELS = {
    "three": "saved_model_half_plus_three",
    "cpu": "saved_model_half_plus_two_cpu",
    "mkl": "saved_model_half_plus_two_mkl",
    "tf2": "saved_model_half_plus_two_tf2_cpu",
    "two": "saved_model_half_plus_two_2_versions",
}


@pytest.fixture(scope="module")
def shared_models_server(
    shared_testdata: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, str]]:
    home = tmp_path_factory.mktemp("testdata-engine")
    entries = [
        f'  config {{ name: "{name}" base_path: "{shared_testdata / directory}" '
        'model_platform: "tensorflow" model_version_policy { all {} } }'
        for name, directory in MODELS.items()
    ]
    config = "model_config_list {\n" + "\n".join(entries) + "\n}\n"
    with serve_with_admin(home, config, "three") as served:
        yield served


def post(server: ServerProcess, path: str, body: object) -> dict[str, object]:
    response = httpx.post(f"{server.rest_url}/v1/models/{path}", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_every_model_is_available(shared_models_server: tuple[ServerProcess, str]) -> None:
    server, api = shared_models_server
    for name in MODELS:
        model = admin("GET", f"{api}/models/{name}").json()
        for version in model["versions"]:
            assert version["state"] == "AVAILABLE", (name, version)
            runners = {s["name"]: s["runner"] for s in version["signatures"]}
            assert set(runners.values()) == {"onnxruntime"}, (name, runners)


def test_half_plus_three(shared_models_server: tuple[ServerProcess, str]) -> None:
    server, _ = shared_models_server
    assert post(server, "three:predict", {"instances": [1.0, 2.0]}) == {"predictions": [3.5, 4.0]}
    body = {"signature_name": "tensorflow/serving/regress", "examples": [{"x": 1.0}, {"x": 4.0}]}
    assert post(server, "three:regress", body) == {"results": [3.5, 5.0]}


@pytest.mark.parametrize("model", ["cpu", "mkl", "two/versions/123", "two/versions/124"])
def test_half_plus_two_variants(
    shared_models_server: tuple[ServerProcess, str], model: str
) -> None:
    server, _ = shared_models_server
    assert post(server, f"{model}:predict", {"instances": [[1.0], [4.0]]}) == {
        "predictions": [[2.5], [4.0]]
    }
    body = {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]}
    assert post(server, f"{model}:classify", body) == {"results": [[["", 3.0]]]}
    body = {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}, {"x": 6.0}]}
    assert post(server, f"{model}:regress", body) == {"results": [3.0, 5.0]}


def test_tf2_saved_model(shared_models_server: tuple[ServerProcess, str]) -> None:
    """Saved with tf.saved_model.save: x is float[1], classify/regress are predict-named."""
    server, _ = shared_models_server
    assert post(server, "tf2:predict", {"inputs": {"x": [4.0]}}) == {"outputs": [4.0]}
    body = {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]}
    assert post(server, "tf2:regress", body) == {"results": [3.0]}
