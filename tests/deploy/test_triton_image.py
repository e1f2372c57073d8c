"""Triton from tfsgate's image (the CPU compose variant's ``triton-cpu``, the CPU Kubernetes overlay).

``docker/tritonserver.sh`` assembles the python backend from the nvidia-pytriton wheel and execs
its tritonserver; the python backend's stub must find the image's packages (TensorFlow for the
runners). The repository API is restricted by key as compose and Kubernetes run it: without the
header Triton refuses, with it the model loads.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
from tritonclient.utils import InferenceServerException

from tests.support import docker
from tests.support.servers import free_port
from tests.support.triton_models import write_doubler

pytestmark = pytest.mark.docker

KEY_HEADER = "tfsgate-repository-key"
KEY = "test-repository-key"
# Over gRPC Triton reads the key from a header carrying this prefix (HTTP: the bare name).
GRPC_KEY_HEADER = f"triton-grpc-protocol-{KEY_HEADER}"


@pytest.fixture(scope="module")
def triton(
    tfsgate_image: docker.BuiltImage, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, int]]:
    repository = tmp_path_factory.mktemp("triton-repository")
    write_doubler(repository)
    http, grpc_port, metrics = free_port(), free_port(), free_port()
    container = docker.run_container(
        f"tfsgate-test-triton-{os.getpid()}",
        tfsgate_image.tag,
        [
            "--network=host",
            "--shm-size=256m",
            "--entrypoint=tritonserver",
            "-v",
            f"{repository}:/model_repository:ro",
        ],
        [
            "--model-repository=/model_repository",
            "--model-control-mode=explicit",
            f"--http-port={http}",
            f"--grpc-port={grpc_port}",
            f"--metrics-port={metrics}",
            f"--grpc-restricted-protocol=model-repository:{KEY_HEADER}={KEY}",
            f"--http-restricted-api=model-repository:{KEY_HEADER}={KEY}",
        ],
    )
    try:
        url = f"127.0.0.1:{grpc_port}"
        client = triton_grpc.InferenceServerClient(url)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if not container.running():
                pytest.fail(f"tritonserver exited:\n{container.logs()[-4000:]}")
            with contextlib.suppress(InferenceServerException):
                if client.is_server_ready():
                    break
            time.sleep(0.5)
        else:
            pytest.fail(f"tritonserver not ready:\n{container.logs()[-4000:]}")
        yield url, metrics
    finally:
        container.remove()


def test_repository_api_refuses_calls_without_the_key(triton: tuple[str, int]) -> None:
    client = triton_grpc.InferenceServerClient(triton[0])
    with pytest.raises(InferenceServerException, match=KEY_HEADER):
        client.load_model("doubler")
    assert not client.is_model_ready("doubler")


def test_python_backend_runs_with_the_images_tensorflow(triton: tuple[str, int]) -> None:
    client = triton_grpc.InferenceServerClient(triton[0])
    client.load_model("doubler", headers={GRPC_KEY_HEADER: KEY})
    assert client.is_model_ready("doubler")
    x = triton_grpc.InferInput("x", [2, 1], "FP32")
    x.set_data_from_numpy(np.array([[1.5], [4.0]], dtype=np.float32))
    result = client.infer("doubler", [x])
    assert result.as_numpy("y").tolist() == [[3.0], [8.0]]


def test_metrics_port_serves_triton_series(triton: tuple[str, int]) -> None:
    import httpx

    # Loading again is a no-op when loaded: this test does not depend on the order of the others.
    triton_grpc.InferenceServerClient(triton[0]).load_model(
        "doubler", headers={GRPC_KEY_HEADER: KEY}
    )
    text = httpx.get(f"http://127.0.0.1:{triton[1]}/metrics", timeout=10).text
    assert 'nv_inference_request_success{model="doubler",version="1"}' in text
