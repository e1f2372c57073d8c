"""tfsgate's image behaves like ``tensorflow/serving``: TF Serving's quickstart, unchanged.

TF Serving documents ``docker run -p 8500:8500 -p 8501:8501 -v "$PWD/models/half_plus_two:/models/
half_plus_two" -e MODEL_NAME=half_plus_two tensorflow/serving``, then a curl predict. Here the
container shares the host's network (this machine's engine has no default bridge) and takes its
ports from the image's GRPC_PORT and PORT, the variables TF Serving's entrypoint reads; an appended
flag reaches the server as in TF Serving's ``tf_serving_entrypoint.sh``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from tests.support import docker
from tests.support.servers import free_port
from tfsgate.core import protos

pytestmark = pytest.mark.docker


class Served:
    def __init__(self, container: docker.Container, grpc_port: int, rest_port: int) -> None:
        self.container = container
        self.grpc_target = f"127.0.0.1:{grpc_port}"
        self.rest_url = f"http://127.0.0.1:{rest_port}"


def wait_available(served: Served, model: str, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not served.container.running():
            pytest.fail(f"the container exited:\n{served.container.logs()[-4000:]}")
        with contextlib.suppress(httpx.HTTPError):
            answer = httpx.get(f"{served.rest_url}/v1/models/{model}", timeout=2)
            if answer.status_code == 200 and "AVAILABLE" in answer.text:
                return
        time.sleep(0.5)
    pytest.fail(f"{model} not AVAILABLE after {timeout:.0f}s:\n{served.container.logs()[-4000:]}")


@pytest.fixture(scope="module")
def quickstart(tfsgate_image: docker.BuiltImage, half_plus_two: Path) -> Iterator[Served]:
    grpc_port, rest_port = free_port(), free_port()
    container = docker.run_container(
        f"tfsgate-test-quickstart-{os.getpid()}",
        tfsgate_image.tag,
        [
            "--network=host",
            "-e",
            f"GRPC_PORT={grpc_port}",
            "-e",
            f"PORT={rest_port}",
            "-v",
            f"{half_plus_two}:/models/half_plus_two:ro",
            "-e",
            "MODEL_NAME=half_plus_two",
        ],
        # Appended to the server command as TF Serving's entrypoint does; on the host's network
        # the admin API's default port could be taken by anything else running here.
        ["--admin_port=0"],
    )
    try:
        served = Served(container, grpc_port, rest_port)
        wait_available(served, "half_plus_two")
        yield served
    finally:
        container.remove()


def test_rest_predict_as_tf_serving_quickstart(quickstart: Served) -> None:
    answer = httpx.post(
        f"{quickstart.rest_url}/v1/models/half_plus_two:predict",
        content=b'{"instances": [1.0, 2.0, 5.0]}',
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": [2.5, 3.0, 4.5]}


def test_model_status_names_the_mounted_version(quickstart: Served) -> None:
    answer = httpx.get(f"{quickstart.rest_url}/v1/models/half_plus_two", timeout=10)
    assert answer.json() == {
        "model_version_status": [
            {
                "version": "123",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }


def test_grpc_predict_with_the_official_client(quickstart: Served) -> None:
    request = protos.predict_pb2.PredictRequest()
    request.model_spec.name = "half_plus_two"
    tensor = request.inputs["x"]
    tensor.dtype = protos.types_pb2.DT_FLOAT
    tensor.tensor_shape.dim.add(size=1)
    tensor.tensor_shape.dim.add(size=1)
    tensor.float_val.append(2.0)
    with grpc.insecure_channel(quickstart.grpc_target) as channel:
        stub = protos.prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=30)
    assert list(response.outputs["y"].float_val) == [3.0]
    assert response.model_spec.version.value == 123


def test_appended_model_config_file_as_in_tf_serving_docs(
    tfsgate_image: docker.BuiltImage, half_plus_two: Path, tmp_path: Path
) -> None:
    """TF Serving's documented ``docker run ... tensorflow/serving --model_config_file=...``: the
    appended flag wins over the image's MODEL_NAME default, as in tensorflow_model_server."""
    (tmp_path / "models.config").write_text(
        'model_config_list { config { name: "hp2" base_path: "/models/half_plus_two" '
        'model_platform: "tensorflow" } }\n'
    )
    grpc_port, rest_port = free_port(), free_port()
    container = docker.run_container(
        f"tfsgate-test-config-{os.getpid()}",
        tfsgate_image.tag,
        [
            "--network=host",
            "-e",
            f"GRPC_PORT={grpc_port}",
            "-e",
            f"PORT={rest_port}",
            "-v",
            f"{tmp_path}/models.config:/models/models.config:ro",
            "-v",
            f"{half_plus_two}:/models/half_plus_two:ro",
        ],
        [
            "--model_config_file=/models/models.config",
            "--model_config_file_poll_wait_seconds=60",
            "--admin_port=0",
        ],
    )
    try:
        served = Served(container, grpc_port, rest_port)
        wait_available(served, "hp2")
        answer = httpx.post(
            f"{served.rest_url}/v1/models/hp2:predict",
            content=b'{"instances": [1.0, 2.0, 5.0]}',
            timeout=30,
        )
        assert answer.json() == {"predictions": [2.5, 3.0, 4.5]}
    finally:
        container.remove()


def test_image_leaves_out_dev_tools(tfsgate_image: docker.BuiltImage) -> None:
    """No test or lint tools and no pip cache in the image (the Dockerfile installs runtime deps)."""
    listing = docker.docker(
        "run",
        "--rm",
        "--network=none",
        "--entrypoint",
        "sh",
        tfsgate_image.tag,
        "-c",
        "ls /opt/tfsgate/lib/python3.11/site-packages; du -s /root/.cache 2>/dev/null || true",
    ).stdout
    packages = {line.strip().lower() for line in listing.splitlines()}
    assert "tfsgate" in packages or any(p.startswith("tfsgate-") for p in packages)
    assert not packages & {"pytest", "mypy", "ruff"}
    assert "/root/.cache" not in listing


def test_docker_stop_shuts_down_cleanly(quickstart: Served) -> None:
    """The entrypoint execs the server, so ``docker stop``'s SIGTERM reaches it: exit 0 in time.

    Runs last in this module: it stops the module's container.
    """
    started = time.monotonic()
    docker.docker("stop", "--time", "30", quickstart.container.name, timeout=60)
    assert time.monotonic() - started < 25
    state = docker.docker(
        "inspect", "--format", "{{.State.ExitCode}}", quickstart.container.name
    ).stdout.strip()
    assert state == "0", quickstart.container.logs()[-3000:]
