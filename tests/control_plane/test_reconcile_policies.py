"""The reconciler end to end over a real ``tfsgate serve`` and tritonserver: policies and reload.

Each test gets its own ``policies`` deployment: a JSON ``ModelServerConfig`` with model ``m``
(policy ``all``, versions 1 and 2 answering ``answer(2.0)`` and ``answer(3.0)``, labels ``stable``
-> 1 and ``canary`` -> 2), a fresh PostgreSQL database when the server is reachable (else SQLite),
``--allow_version_labels_for_unavailable_models``; and gRPC ``HandleReloadConfigRequest``. Tests
pass alone and in any order.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy.engine import Engine

from control_plane.catalog.entities import VersionState
from tests.support.reconcile import (
    Deployment,
    answer,
    assert_nothing_half_written,
    catalog_labels,
    catalog_states,
    grpc_predict,
    predict,
    prediction,
    status,
)
from tests.support.servers import ServerProcess
from tfsgate.core.protos import get_model_status_pb2, model_management_pb2, model_service_pb2_grpc

pytestmark = pytest.mark.triton  # starts tritonserver


@pytest.fixture
def catalog_url(
    request: pytest.FixtureRequest, postgres_admin: Engine | None, tmp_path: Path
) -> str:
    """A fresh PostgreSQL database when the server is reachable, else SQLite."""
    if postgres_admin is None:  # no PostgreSQL here: the same flows over SQLite
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    make: Callable[[], str] = request.getfixturevalue("make_pg_database")
    return make()


@pytest.fixture
def policies(
    templates: dict[float, Path], catalog_url: str, tmp_path: Path
) -> Iterator[Deployment]:
    root = tmp_path
    for version, b in ((1, 2.0), (2, 3.0)):
        shutil.copytree(templates[b], root / "models" / "m" / str(version))
    shutil.copytree(templates[4.0], root / "models" / "n" / "1")
    config = root / "models.json"
    entry = {
        "name": "m",
        "base_path": str(root / "models" / "m"),
        "model_platform": "tensorflow",
        "model_version_policy": {"all": {}},
        "version_labels": {"stable": 1, "canary": 2},
    }
    config.write_text(json.dumps({"model_config_list": {"config": [entry]}}))
    deployment = Deployment(
        root / "home",
        [
            f"--model_config_file={config}",
            "--model_config_file_poll_wait_seconds=0",
            "--file_system_poll_wait_seconds=1",
            "--allow_version_labels_for_unavailable_models",
            f"--database_url={catalog_url}",
        ],
        "m",
        catalog_url,
    )
    with deployment.serving():
        yield deployment


def reload_config(
    server: ServerProcess, entries: list[dict[str, Any]]
) -> model_management_pb2.ReloadConfigResponse:
    from google.protobuf import json_format

    request = model_management_pb2.ReloadConfigRequest()
    json_format.ParseDict({"model_config_list": {"config": entries}}, request.config)
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        return stub.HandleReloadConfigRequest(request, timeout=300)


def test_json_config_all_policy_and_labels(policies: Deployment) -> None:
    server = policies.server
    assert server is not None
    assert status(server, "m") == {"1": ("AVAILABLE", ""), "2": ("AVAILABLE", "")}
    assert prediction(server, "m/versions/1") == answer(2.0)
    assert prediction(server, "m/versions/2") == answer(3.0)
    assert prediction(server, "m") == answer(3.0)
    assert prediction(server, "m/labels/stable") == answer(2.0)
    assert prediction(server, "m/labels/canary") == answer(3.0)
    for label, version, b in (("stable", 1, 2.0), ("canary", 2, 3.0)):
        response = grpc_predict(server, "m", label=label)
        assert list(response.outputs["y"].float_val) == [answer(b)]
        assert response.model_spec.version.value == version
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "m"
    request.model_spec.version_label = "canary"
    with grpc.insecure_channel(server.grpc_target) as channel:
        (one,) = (
            model_service_pb2_grpc.ModelServiceStub(channel)
            .GetModelStatus(request, timeout=10)
            .model_version_status
        )
    assert one.version == 2


def test_reload_specific_policy_and_label_on_unavailable_version(policies: Deployment) -> None:
    server = policies.server
    assert server is not None
    base = str(policies.home.parent / "models" / "m")
    entry = {
        "name": "m",
        "base_path": base,
        "model_platform": "tensorflow",
        "model_version_policy": {"specific": {"versions": [1]}},
        # "previous" is new and points at version 2, which this reload retires: TF Serving
        # accepts that only with --allow_version_labels_for_unavailable_models (given here).
        "version_labels": {"stable": 1, "previous": 2},
    }
    assert reload_config(server, [entry]).status.error_code == 0
    assert status(server, "m") == {"1": ("AVAILABLE", ""), "2": ("END", "")}
    assert prediction(server, "m") == answer(2.0)
    assert prediction(server, "m/labels/stable") == answer(2.0)
    assert predict(server, "m/versions/2").status_code == 404
    assert catalog_labels(policies.catalog_url, "m")["previous"] == 2
    response = predict(server, "m/labels/previous")
    assert response.status_code == 404, response.text
    with pytest.raises(grpc.RpcError) as caught:
        grpc_predict(server, "m", version=2)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_reload_replaces_the_model_set(policies: Deployment) -> None:
    server = policies.server
    assert server is not None
    entry = {
        "name": "n",
        "base_path": str(policies.home.parent / "models" / "n"),
        "model_platform": "tensorflow",
    }
    assert reload_config(server, [entry]).status.error_code == 0
    assert prediction(server, "n") == answer(4.0)  # answered once reconciled: no waiting
    assert predict(server, "m").status_code == 404
    states = catalog_states(policies.catalog_url, "m")
    assert {v: s for v, (s, _) in states.items()} == {1: VersionState.END, 2: VersionState.END}
    assert_nothing_half_written(policies, policies.home.parent / "models")


def test_reload_with_bad_config_is_invalid_argument(policies: Deployment) -> None:
    server = policies.server
    assert server is not None
    good = {"name": "n", "base_path": str(policies.home.parent / "models" / "n")}
    good["model_platform"] = "tensorflow"
    missing = {**good, "name": "x", "base_path": str(policies.home.parent / "nowhere")}
    for entries, message in (
        ([good, good], "Illegal to list model n multiple times"),
        ([missing], "Could not find base path"),
        ([{**good, "model_platform": "onnx"}], "unsupported platform onnx"),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            reload_config(server, entries)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert message in (caught.value.details() or "")
    assert prediction(server, "m") == answer(3.0)  # the old model set keeps serving
