"""Several Tritons: two tritonservers with their own repositories stand in for two hosts (no
shared volume: files are pushed with each load; the repository API restricted by key). The control
plane reconciles both, a gateway spreads requests over them, and one is killed and restarted while
clients predict: no request fails and the control plane loads the model on it again."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import tritonclient.grpc as triton_grpc
from tritonclient.utils import InferenceServerException

from control_plane.triton.embedded import EmbeddedTriton
from tests.support.load import Failed, Load
from tests.support.roles import health_status, predict_status, running, wait_for
from tfsgate.core.ports import free_port

MODEL = "half_plus_two"
TRITON_MODEL = "half_plus_two"  # its ONNX signatures share one Triton model
KEY = "test-repository-key"
CLIENTS = 4


def start_triton(home: Path) -> EmbeddedTriton:
    """A tritonserver with fixed ports (it comes back at the same address) and the repository
    API restricted by key, as in compose and Kubernetes."""
    triton = EmbeddedTriton(
        home / "model_repository",  # its own, empty: the control plane pushes files
        home,
        ports=(free_port(), free_port(), free_port()),
        extra_args=[f"--grpc-restricted-protocol=model-repository:tfsgate-repository-key={KEY}"],
    )
    triton.start()
    asyncio.run(triton.wait_ready())
    return triton


def kill(triton: EmbeddedTriton) -> None:
    """As a host dies: SIGKILL to tritonserver and its python-backend stubs."""
    assert triton.pid is not None
    os.killpg(triton.pid, signal.SIGKILL)
    triton.stop(grace=0)


def loaded_versions(triton: EmbeddedTriton) -> set[int]:
    """The versions of the serving signature READY on ``triton`` (pushed models are not in the
    repository index; statistics list what is loaded)."""
    assert triton.endpoints is not None
    client = triton_grpc.InferenceServerClient(triton.endpoints.grpc_url)
    try:
        stats = client.get_inference_statistics(TRITON_MODEL)
    except InferenceServerException:
        return set()
    finally:
        client.close()
    return {int(s.version) for s in stats.model_stats if s.version}


def inferences(triton: EmbeddedTriton) -> int:
    assert triton.endpoints is not None
    client = triton_grpc.InferenceServerClient(triton.endpoints.grpc_url)
    try:
        stats = client.get_inference_statistics(TRITON_MODEL)
        return sum(int(s.inference_count) for s in stats.model_stats)
    except InferenceServerException:
        return 0
    finally:
        client.close()


@pytest.fixture
def tritons(tmp_path: Path) -> Iterator[list[EmbeddedTriton]]:
    servers = [start_triton(tmp_path / f"host{i}") for i in range(2)]
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def clients(url: str) -> Load:
    """Threads predicting through the gateway until stopped; every answer is checked."""

    def predict(client: httpx.Client, _: int) -> None:
        answer = client.post(url, json={"instances": [1.0, 2.0]})
        if answer.status_code != 200 or answer.json() != {"predictions": [2.5, 3.0]}:
            raise Failed(f"{answer.status_code} {answer.text}")

    return Load(predict, threads=CLIENTS)


@pytest.mark.triton
@pytest.mark.process
def test_two_tritons_one_killed_and_restarted_without_failed_requests(
    half_plus_two: Path, tmp_path: Path, tritons: list[EmbeddedTriton]
) -> None:
    first, second = tritons
    urls = [t.endpoints.grpc_url for t in tritons if t.endpoints is not None]
    # Inferences go to the HTTP endpoints (the gateways' cheaper path); the control plane's
    # repository calls to the gRPC ones.
    http_urls = [t.endpoints.http_url for t in tritons if t.endpoints is not None]
    home = tmp_path / "control"
    catalog = f"sqlite:///{home / 'catalog.db'}"
    control_args = [
        f"--database_url={catalog}",
        *(f"--triton_url={u}" for u in urls),
        "--triton_push_model_files",
        f"--triton_repository_key={KEY}",
        f"--model_repository={home / 'model_repository'}",
        f"--model_name={MODEL}",
        f"--model_base_path={half_plus_two}",
    ]
    gateway_args = [
        f"--database_url={catalog}",
        *(f"--triton_url={u}" for u in urls),
        *(f"--triton_http_url={u}" for u in http_urls),
    ]
    with (
        running("control-plane", home, control_args) as control,
        running("gateway", tmp_path / "gateway", gateway_args) as gateway,
    ):
        wait_for(gateway, lambda: predict_status(gateway) == 200, "serving")
        assert loaded_versions(first) == loaded_versions(second) == {123}
        # The repository API answers only with the key the control plane holds.
        assert first.endpoints is not None
        bare = triton_grpc.InferenceServerClient(first.endpoints.grpc_url)
        with pytest.raises(InferenceServerException):
            bare.load_model(TRITON_MODEL)
        bare.close()

        url = f"{gateway.rest_url}/v1/models/{MODEL}:predict"
        with clients(url) as load:
            time.sleep(3)
            before_kill = load.ok
            assert inferences(first) > 0 and inferences(second) > 0  # both serve
            kill(first)
            killed = time.monotonic()
            time.sleep(3)
            first.start()  # the same ports: the host is back, with nothing loaded
            asyncio.run(first.wait_ready())
            restarted = time.monotonic()
            wait_for(control, lambda: loaded_versions(first) == {123}, "reloaded", 120)
            reloaded = time.monotonic()
            served_by_first = inferences(first)
            wait_for(gateway, lambda: inferences(first) > served_by_first, "traffic back", 30)
            time.sleep(2)
        print(
            f"\ntwo Tritons, {CLIENTS} clients: {load.ok} predictions, "
            f"{len(load.failures)} failed; {before_kill} before the kill; killed one Triton "
            f"for {restarted - killed:.1f} s, reloaded {reloaded - restarted:.1f} s after it "
            "was back"
        )
        assert load.failures == []
        assert load.ok > before_kill
        assert health_status(gateway.grpc_target) == "SERVING"
        assert control.alive()
