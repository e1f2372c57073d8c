"""The production roles as processes: ``tfsgate gateway`` following a control plane's catalog
through the routing feed, started before it, and the PostgreSQL topology with a hot standby."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from control_plane.triton.embedded import EmbeddedTriton
from tests.support.roles import (
    RoleProcess,
    admin_answers,
    health_status,
    launch,
    predict_status,
    running,
    stop,
    wait_for,
)

MODEL = "half_plus_two"
DELAY_LIMIT = 1.0  # issue 10: every change reaches a gateway within a second


def grpc_predict(target: str, x: float, label: str = ""):  # type: ignore[no-untyped-def]
    """TF Serving's own client: tensorflow_serving.apis over a plain channel."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    if label:
        request.model_spec.version_label = label
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([x], shape=[1, 1], dtype=tf.float32))
    with grpc.insecure_channel(target) as channel:
        return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            request, timeout=30
        )


def label_delay(control: RoleProcess, gateway: RoleProcess, label: str, version: int) -> float:
    """Seconds from the admin API's answer setting ``label`` to the gateway serving it."""
    url = f"{gateway.rest_url}/v1/models/{MODEL}/labels/{label}:predict"
    assert httpx.post(url, json={"instances": [1.0]}, timeout=10).status_code == 400
    answer = httpx.put(
        f"{control.admin_url}/models/{MODEL}/labels/{label}", json={"version": version}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    started = time.monotonic()
    while time.monotonic() - started < 10:
        if httpx.post(url, json={"instances": [1.0]}, timeout=10).status_code == 200:
            return time.monotonic() - started
        time.sleep(0.01)
    raise AssertionError(f"label {label} never reached the gateway:\n{gateway.log()[-3000:]}")


def sqlite_url(home: Path) -> str:
    return f"sqlite:///{home / 'catalog.db'}"


@pytest.mark.triton
@pytest.mark.process
def test_gateway_follows_a_serve_process_within_a_second(
    half_plus_two: Path, tmp_path: Path
) -> None:
    home = tmp_path / "serve"
    serve_args = [f"--model_name={MODEL}", f"--model_base_path={half_plus_two}"]
    serve_args.append(f"--model_repository={home / 'model_repository'}")
    with running("serve", home, serve_args) as serve:
        wait_for(serve, lambda: admin_answers(serve), "admin API")
        gateway_args = [f"--database_url={sqlite_url(home)}"]  # Triton: as the feed says
        with running("gateway", tmp_path / "gateway", gateway_args) as gateway:
            wait_for(gateway, lambda: predict_status(gateway) == 200, "serving")
            assert health_status(gateway.grpc_target) == "SERVING"
            delays = [label_delay(serve, gateway, f"l{i}", 123) for i in range(5)]
            print(f"\nlabel change -> gateway (SQLite, poll): {[round(d, 3) for d in delays]} s")
            assert max(delays) < DELAY_LIMIT
            answer = httpx.post(
                f"{gateway.rest_url}/v1/models/{MODEL}/labels/l0:predict",
                json={"instances": [1.0, 2.0]},
                timeout=10,
            )
            assert answer.json() == {"predictions": [2.5, 3.0]}


@pytest.mark.triton
@pytest.mark.process
def test_gateway_started_before_its_control_plane(half_plus_two: Path, tmp_path: Path) -> None:
    home = tmp_path / "control"
    url = sqlite_url(home)
    with running("gateway", tmp_path / "gateway", [f"--database_url={url}"]) as gateway:
        wait_for(gateway, lambda: predict_status(gateway) == 503, "503 without a catalog", 60)
        answer = httpx.post(
            f"{gateway.rest_url}/v1/models/{MODEL}:predict", json={"instances": [1.0]}, timeout=10
        )
        assert answer.status_code == 503
        assert set(answer.json()) == {"error"} and answer.json()["error"]
        with pytest.raises(grpc.RpcError) as failure:
            grpc_predict(gateway.grpc_target, 1.0)
        assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
        assert health_status(gateway.grpc_target) == "NOT_SERVING"
        control_args = [
            f"--model_name={MODEL}",
            f"--model_base_path={half_plus_two}",
            f"--model_repository={home / 'model_repository'}",
        ]
        with running("control-plane", home, control_args):
            wait_for(gateway, lambda: predict_status(gateway) == 200, "serving after start")
            assert health_status(gateway.grpc_target) == "SERVING"
            response = grpc_predict(gateway.grpc_target, 2.0)
            assert list(response.outputs["y"].float_val) == [3.0]


@pytest.fixture
def triton(tmp_path: Path) -> Iterator[EmbeddedTriton]:
    """A tritonserver of its own, as in compose's triton container: control planes load into
    its repository, gateways infer on it."""
    server = EmbeddedTriton(tmp_path / "model_repository", tmp_path / "triton")
    server.start()
    try:
        asyncio.run(server.wait_ready())
        yield server
    finally:
        server.stop()


@pytest.mark.triton
@pytest.mark.process
@pytest.mark.postgres
def test_postgres_topology_with_a_hot_standby(
    half_plus_two: Path,
    tmp_path: Path,
    make_pg_database: Callable[[], str],
    triton: EmbeddedTriton,
) -> None:
    assert triton.endpoints is not None
    postgres_url = make_pg_database()
    shared = [
        f"--database_url={postgres_url}",
        f"--triton_url={triton.endpoints.grpc_url}",
        f"--model_repository={triton.model_repository}",
        f"--model_name={MODEL}",
        f"--model_base_path={half_plus_two}",
    ]
    leader = launch("control-plane", tmp_path / "cp1", shared)
    standby: RoleProcess | None = None
    gateways: list[RoleProcess] = []
    try:
        wait_for(leader, lambda: admin_answers(leader), "leading")
        standby = launch("control-plane", tmp_path / "cp2", shared)
        wait_for(standby, lambda: "standing by" in standby.log(), "standing by", 60)
        assert not admin_answers_quietly(standby)  # a standby serves nothing
        gateway_args = [
            f"--database_url={postgres_url}",
            f"--triton_url={triton.endpoints.grpc_url}",
        ]
        gateways = [launch("gateway", tmp_path / f"gw{i}", gateway_args) for i in range(2)]
        for gateway in gateways:
            wait_for(gateway, lambda g=gateway: predict_status(g) == 200, "serving")
        delays = [label_delay(leader, g, f"a{i}", 123) for i, g in enumerate(gateways)]
        print(f"\nlabel change -> gateway (PostgreSQL, NOTIFY): {[round(d, 3) for d in delays]} s")
        assert max(delays) < DELAY_LIMIT

        leader.process.send_signal(signal.SIGKILL)
        leader.process.wait()
        killed = time.monotonic()
        wait_for(standby, lambda: admin_answers(standby), "taking over", 120)
        takeover = time.monotonic() - killed
        print(f"standby took over in {takeover:.2f} s after SIGKILL of the leader")
        for gateway in gateways:  # the data plane never depended on the control plane
            assert predict_status(gateway) == 200
            assert list(grpc_predict(gateway.grpc_target, 3.0, "a0").outputs["y"].float_val) == [
                3.5
            ]
        after = [label_delay(standby, g, f"b{i}", 123) for i, g in enumerate(gateways)]
        print(f"label change after takeover -> gateway: {[round(d, 3) for d in after]} s")
        assert max(after) < DELAY_LIMIT
    finally:
        for role in [*gateways, *([standby] if standby else []), leader]:
            stop(role)


def admin_answers_quietly(control: RoleProcess) -> bool:
    try:
        return admin_answers(control)
    except httpx.HTTPError:
        return False
