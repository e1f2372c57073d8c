"""``tfsgate serve --gateway_workers 2``: the front doors in two ``tfsgate gateway`` processes
beside the control plane. Both answer on the flags' ports, a scrape shows both workers' counts,
ModelService's config reload is answered by the control plane whichever worker takes it, a worker
that dies is started again, and SIGTERM stops every process."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format

from tests.support.procs import wait_ended
from tests.support.roles import (
    RoleProcess,
    answering_workers,
    assert_workers_share_the_ports,
    predict_status,
    running,
    wait_for,
)
from tfsgate.core.protos import model_management_pb2, model_service_pb2_grpc
from tfsgate.serve_workers import worker_args
from tfsgate.settings import ServeSettings

MODEL = "half_plus_two"


def test_worker_args_carry_the_front_doors_flags_and_not_the_control_planes() -> None:
    settings = ServeSettings(
        port=9000,
        rest_api_port=9001,
        host="127.0.0.1",
        enable_batching=True,
        model_config_file="models.config",
        grpc_socket_path="/run/tfs.sock",
        gateway_workers=3,
        home="/srv/tfsgate",
    )
    first = worker_args(settings, 0, Path("/tmp/x/control.sock"))
    passed = ["--port=9000", "--rest_api_port=9001", "--enable_batching=true", "--host=127.0.0.1"]
    assert first[:4] == passed
    assert not any(a.startswith("--model_config_file") for a in first)
    assert "--grpc_socket_path=/run/tfs.sock" in first
    assert "--database_url=sqlite:////srv/tfsgate/catalog.db" in first
    # Set here, not left to the inherited TFSGATE_* environment: one process each, sharing the
    # ports, forwarding reloads.
    assert first[-3:] == [
        "--control_plane_socket=/tmp/x/control.sock",
        "--gateway_workers=1",
        "--reuse_port",
    ]
    second = worker_args(settings, 1, Path("/tmp/x/control.sock"))
    assert "--grpc_socket_path=" in second  # a Unix socket has one listener: the first worker's


def gateway_workers(serve: RoleProcess) -> list[int]:
    """The serve's children running ``tfsgate gateway`` (Triton is a child too)."""
    pid = serve.process.pid
    found = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"tfsgate.cli" in command and b"gateway" in command:
            found.append(int(child))
    return found


def reload(target: str, base_path: Path) -> model_management_pb2.ReloadConfigResponse:
    request = model_management_pb2.ReloadConfigRequest()
    entry = {"name": MODEL, "base_path": str(base_path), "model_platform": "tensorflow"}
    json_format.ParseDict({"model_config_list": {"config": [entry]}}, request.config)
    with grpc.insecure_channel(target) as channel:  # a new connection: any worker may take it
        return model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(
            request, timeout=120
        )


@pytest.mark.triton
@pytest.mark.process
def test_serve_runs_its_front_doors_in_gateway_workers(half_plus_two: Path, tmp_path: Path) -> None:
    home = tmp_path / "serve"
    args = [f"--model_name={MODEL}", f"--model_base_path={half_plus_two}", "--gateway_workers=2"]
    args.append(f"--model_repository={home / 'model_repository'}")
    with running("serve", home, args) as serve:
        wait_for(
            serve,
            lambda: (
                len(gateway_workers(serve)) == 2
                and all(predict_status(serve) == 200 for _ in range(10))
            ),
            "both workers serving",
        )
        workers = gateway_workers(serve)
        assert_workers_share_the_ports(serve, 2)

        # A reload reaches the control plane from whichever worker takes the connection: the
        # same model set is accepted, a base path that does not exist is TF Serving's
        # INVALID_ARGUMENT, as from a single-process serve.
        for _ in range(6):
            assert reload(serve.grpc_target, half_plus_two).status.error_code == 0
        for _ in range(4):
            with pytest.raises(grpc.RpcError) as caught:
                reload(serve.grpc_target, tmp_path / "nowhere")
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "Could not find base path" in (caught.value.details() or "")
        assert predict_status(serve) == 200

        # A worker killed outright is started again; the other serves meanwhile.
        os.kill(workers[0], signal.SIGKILL)
        wait_for(
            serve,
            lambda: (
                len(set(gateway_workers(serve)) - set(workers)) == 1
                and len(gateway_workers(serve)) == 2
            ),
            "the killed worker started again",
            timeout=30,
        )
        wait_for(serve, lambda: len(answering_workers(serve)) == 2, "both workers serving again")
        assert "exited with status -9: starting it again" in serve.log()
        workers = gateway_workers(serve)
        serve.process.send_signal(signal.SIGTERM)
        assert serve.process.wait(timeout=60) == 0
    assert not wait_ended(workers, timeout=10)


@pytest.mark.triton
@pytest.mark.process
def test_gateway_workers_end_with_a_serve_killed_outright(
    half_plus_two: Path, tmp_path: Path
) -> None:
    home = tmp_path / "serve"
    args = [f"--model_name={MODEL}", f"--model_base_path={half_plus_two}", "--gateway_workers=2"]
    args.append(f"--model_repository={home / 'model_repository'}")
    with running("serve", home, args) as serve:
        wait_for(serve, lambda: len(gateway_workers(serve)) == 2, "two workers")
        workers = gateway_workers(serve)
        serve.process.kill()
        serve.process.wait()
    assert not wait_ended(workers), "a worker outlived its serve"
