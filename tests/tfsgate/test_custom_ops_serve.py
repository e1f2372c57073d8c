"""``--custom_op_libraries`` through ``tfsgate serve`` (real Triton): a SavedModel needing TF Text's
op fails without the library, with the op's name in GetModelStatus (gRPC and REST) and the admin
API, and is served by the TensorFlow runner with it (ONNX cannot convert the op), in sessions
configured by TF Serving's session flags."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import httpx
import pytest

from tests.support.models import write_model
from tests.support.servers import ServerProcess, free_port, start_server
from tfsgate.core import protos

pytestmark = pytest.mark.triton  # starts tritonserver

OP = "TFText>WhitespaceTokenizeWithOffsetsV2"
TOKEN = "ops-secret"


@pytest.fixture(scope="module")
def base_paths(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("custom-ops")
    write_model("write_text_tokens", root / "tokens" / "1")
    write_model("write_scale", root / "scale" / "1")
    return root


def config(root: Path, home: Path) -> str:
    lines = [
        f'  config {{ name: "{name}" base_path: "{root / name}" model_platform: "tensorflow" }}'
        for name in ("tokens", "scale")
    ]
    path = home / "models.config"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("model_config_list {\n" + "\n".join(lines) + "\n}\n")
    return f"--model_config_file={path}"


def grpc_status(server: ServerProcess, model: str) -> list[tuple[int, str, str]]:
    request = protos.get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = model
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = protos.model_service_pb2_grpc.ModelServiceStub(channel)
        response = stub.GetModelStatus(request, timeout=30)
    state = protos.get_model_status_pb2.ModelVersionStatus.State.Name
    return [
        (v.version, state(v.state), v.status.error_message) for v in response.model_version_status
    ]


def admin(port: int, path: str) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    url = f"http://127.0.0.1:{port}/v1/admin{path}"
    return dict(httpx.get(url, headers=headers, timeout=30).json())


def test_without_the_library_the_status_names_the_op(
    base_paths: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("ops-missing")
    port = free_port()
    args = [config(base_paths, home), f"--admin_port={port}"]
    env = {"TFSGATE_ADMIN_TOKEN": TOKEN}
    with start_server(home / "home", args, model="scale", env=env) as server:
        deadline = time.monotonic() + 120
        while (found := grpc_status(server, "tokens"))[0][1] != "END":
            assert time.monotonic() < deadline, found
            time.sleep(0.5)
        ((version, _, message),) = found
        assert version == 1
        assert f"Op type not registered '{OP}'" in message
        assert "--custom_op_libraries" in message
        rest = httpx.get(f"{server.rest_url}/v1/models/tokens", timeout=30).json()
        (entry,) = rest["model_version_status"]
        assert entry["state"] == "END" and OP in entry["status"]["error_message"]
        model = admin(port, "/models/tokens")
        (listed,) = model["versions"]  # type: ignore[misc]
        assert listed["state"] == "FAILED" and OP in listed["state_reason"]


def test_with_the_library_the_tensorflow_runner_serves_it(
    base_paths: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("ops-loaded")
    port = free_port()
    session = home / "session_config.txt"
    session.write_text("allow_soft_placement: true\nintra_op_parallelism_threads: 8\n")
    args = [
        config(base_paths, home),
        f"--admin_port={port}",
        "--custom_op_libraries=tensorflow_text",
        # TF Serving's session flags configure the TensorFlow runner's sessions (unit-tested in
        # tests/tfsgate/test_flags.py); here they reach a TensorFlow-served model.
        f"--tensorflow_session_config_file={session}",
        "--per_process_gpu_memory_fraction=0.5",
        "--tensorflow_session_parallelism=1",
    ]
    env = {"TFSGATE_ADMIN_TOKEN": TOKEN}
    with start_server(home / "home", args, model="tokens", env=env) as server:
        body = {"instances": ["one two three", "four", ""]}
        answer = httpx.post(f"{server.rest_url}/v1/models/tokens:predict", json=body, timeout=60)
        assert answer.json() == {"predictions": [3, 1, 0]}, answer.text
        request = protos.predict_pb2.PredictRequest()
        request.model_spec.name = "tokens"
        text = request.inputs["text"]
        text.dtype = protos.types_pb2.DT_STRING
        text.tensor_shape.dim.add().size = 2
        text.string_val.extend([b"a b", b"c d e f"])
        with grpc.insecure_channel(server.grpc_target) as channel:
            stub = protos.prediction_service_pb2_grpc.PredictionServiceStub(channel)
            response = stub.Predict(request, timeout=60)
        assert list(response.outputs["tokens"].int64_val) == [2, 4]
        model = admin(port, "/models/tokens")
        (version,) = model["versions"]  # type: ignore[misc]
        (signature,) = version["signatures"]
        assert signature["runner"] == "tensorflow"
        assert signature["fallback_reason"].startswith("not convertible"), signature
        assert grpc_status(server, "tokens") == [(1, "AVAILABLE", "")]
