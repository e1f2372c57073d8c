"""``tfsgate serve`` end to end: REST and gRPC over a real embedded Triton, TF Serving's answers."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import grpc
import httpx
import pytest

from tests.support.procs import pids_mentioning, wait_gone
from tests.support.servers import ServerProcess, free_port, serve_command, start_server


def predict(
    server: ServerProcess, body: dict | bytes, path: str = "half_plus_two"
) -> httpx.Response:
    url = f"{server.rest_url}/v1/models/{path}:predict"
    if isinstance(body, bytes):
        return httpx.post(url, content=body, timeout=30)
    return httpx.post(url, json=body, timeout=30)


@pytest.mark.triton
def test_readme_quickstart_row_format(server: ServerProcess) -> None:
    response = predict(server, {"instances": [1.0, 2.0, 5.0]})
    assert response.status_code == 200
    assert response.json() == {"predictions": [2.5, 3.0, 4.5]}


@pytest.mark.triton
def test_row_format_batch_of_scalars_is_reshaped(server: ServerProcess) -> None:
    assert predict(server, {"instances": [2.0, 3.0, 4.0]}).json() == {
        "predictions": [3.0, 3.5, 4.0]
    }


@pytest.mark.triton
def test_row_format_with_declared_shape(server: ServerProcess) -> None:
    assert predict(server, {"instances": [[1.0], [2.0]]}).json() == {"predictions": [[2.5], [3.0]]}


@pytest.mark.triton
def test_columnar_format(server: ServerProcess) -> None:
    response = predict(server, {"inputs": {"x": [[1.0], [2.0], [5.0]]}})
    assert response.status_code == 200
    assert response.json() == {"outputs": [[2.5], [3.0], [4.5]]}


@pytest.mark.triton
def test_versioned_path(server: ServerProcess) -> None:
    response = predict(server, {"instances": [1.0]}, "half_plus_two/versions/123")
    assert response.json() == {"predictions": [2.5]}


@pytest.mark.triton
def test_status_json_is_tf_servings(server: ServerProcess) -> None:
    response = httpx.get(f"{server.rest_url}/v1/models/half_plus_two", timeout=10)
    assert response.status_code == 200
    assert response.json() == {
        "model_version_status": [
            {
                "version": "123",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }


@pytest.mark.triton
def test_unknown_model_is_404_with_error(server: ServerProcess) -> None:
    response = predict(server, {"instances": [1.0]}, "no_such_model")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert "no_such_model" in response.json()["error"]


@pytest.mark.triton
def test_bad_json_is_400_and_server_keeps_serving(server: ServerProcess) -> None:
    response = predict(server, b'{"instances": [1.0, ')
    assert response.status_code == 400
    assert "JSON Parse error" in response.json()["error"]
    assert predict(server, {"instances": [1.0]}).json() == {"predictions": [2.5]}


def _grpc_predict(server: ServerProcess, name: str, x: list[float]):  # type: ignore[no-untyped-def]
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(x, shape=[len(x), 1], dtype=tf.float32))
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        return stub.Predict(request, timeout=30)


@pytest.mark.triton
def test_grpc_predict_with_official_client(server: ServerProcess) -> None:
    response = _grpc_predict(server, "half_plus_two", [2.0])
    assert list(response.outputs["y"].float_val) == [3.0]
    assert response.model_spec.name == "half_plus_two"
    assert response.model_spec.signature_name == "serving_default"
    assert response.model_spec.version.value == 123


@pytest.mark.triton
def test_grpc_unknown_model_is_not_found(server: ServerProcess) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _grpc_predict(server, "no_such_model", [2.0])
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.triton
def test_grpc_model_status(server: ServerProcess) -> None:
    from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "half_plus_two"
    with grpc.insecure_channel(server.grpc_target) as channel:
        response = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request)
    (status,) = response.model_version_status
    assert status.version == 123
    assert get_model_status_pb2.ModelVersionStatus.State.Name(status.state) == "AVAILABLE"


@pytest.mark.triton
def test_catalog_is_at_head_and_records_the_version(server: ServerProcess) -> None:
    from control_plane.catalog import migrate

    url = f"sqlite:///{server.home / 'catalog.db'}"
    assert migrate.is_at_head(url)
    with sqlite3.connect(server.home / "catalog.db") as db:
        rows = db.execute("SELECT version, state FROM model_versions").fetchall()
    assert rows == [(123, "AVAILABLE")]


@pytest.mark.triton
def test_triton_model_config_is_batched(server: ServerProcess) -> None:
    config = (server.home / "model_repository" / "half_plus_two" / "config.pbtxt").read_text()
    # Triton's cap is per request (TF Serving has none); 128 is the batcher's target.
    assert "max_batch_size: 2147483647" in config
    assert "preferred_batch_size: 128" in config
    assert (server.home / "model_repository" / "half_plus_two" / "123" / "model.py").exists()


@pytest.mark.triton
def test_sigterm_stops_triton_and_stubs(half_plus_two: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    with start_server(
        home, ["--model_name=half_plus_two", f"--model_base_path={half_plus_two}"]
    ) as proc:
        children = pids_mentioning(str(home / "model_repository"))
        assert len(children) >= 2, "expected tritonserver and at least one python-backend stub"
        proc.process.send_signal(signal.SIGTERM)
        assert proc.process.wait(timeout=60) == 0
        assert wait_gone(str(home / "model_repository")) == set()


@pytest.mark.triton
def test_sigkill_of_tfsgate_takes_triton_down(half_plus_two: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    with start_server(
        home, ["--model_name=half_plus_two", f"--model_base_path={half_plus_two}"]
    ) as proc:
        proc.process.send_signal(signal.SIGKILL)
        proc.process.wait(timeout=10)
        assert wait_gone(str(home / "model_repository")) == set()


def _serve_error(tmp_path: Path, args: list[str], rest_port: int | None = None) -> tuple[int, str]:
    command = serve_command(tmp_path / "home", args, free_port(), rest_port or free_port())
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=dict(os.environ))
    return done.returncode, done.stdout + done.stderr


@pytest.mark.process
def test_missing_base_path_is_one_line_error(tmp_path: Path) -> None:
    code, output = _serve_error(tmp_path, [f"--model_base_path={tmp_path / 'nope'}"])
    assert code != 0
    assert "does not exist" in output
    assert "Traceback" not in output


@pytest.mark.process
def test_base_path_without_versions_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, output = _serve_error(tmp_path, [f"--model_base_path={tmp_path / 'empty'}"])
    assert code != 0
    assert "No versions of servable default found under base path" in output
    assert "Traceback" not in output


@pytest.mark.process
def test_port_in_use_is_one_line_error(half_plus_two: Path, tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, output = _serve_error(
            tmp_path, [f"--model_base_path={half_plus_two}"], rest_port=port
        )
    assert code != 0
    assert f"port {port} (--rest_api_port) is already in use" in output
    assert "Traceback" not in output


@pytest.mark.triton
def test_model_name_from_environment(half_plus_two: Path, tmp_path: Path) -> None:
    env = {"MODEL_NAME": "from_env", "MODEL_BASE_PATH": str(half_plus_two)}
    with start_server(tmp_path / "home", [], model="from_env", env=env) as proc:
        response = httpx.post(
            f"{proc.rest_url}/v1/models/from_env:predict", json={"instances": [1.0]}, timeout=30
        )
        assert response.json() == {"predictions": [2.5]}


@pytest.mark.process
def test_cli_help_lists_tf_serving_flags() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tfsgate.cli", "serve", "--help"], capture_output=True, text=True
    )
    for flag in ("--port", "--rest_api_port", "--model_name", "--model_base_path", "--triton_url"):
        assert flag in done.stdout
