"""Issue 4 end to end: the reconciler over real ``tfsgate serve`` processes and real tritonserver.

Two servers are shared by the tests of this module, which run in file order (each test leaves its
server in the state the next one starts from, as a long-lived deployment would):

- ``fleet``: a text ``ModelServerConfig`` with models ``m1`` and ``m2`` (latest policy), SQLite,
  config file and base paths polled every second. New versions, half-copied and broken versions,
  a broken config edit, a Triton kill, a tfsgate restart, then a config edit removing ``m2``.
- ``policies``: a JSON ``ModelServerConfig`` (policy ``all``, labels), PostgreSQL when reachable,
  ``--allow_version_labels_for_unavailable_models``; gRPC ``HandleReloadConfigRequest``.

Versions are told apart by their answer: every SavedModel computes ``0.5 * x + b`` with its own
``b``, so ``x = 1`` answers ``0.5 + b``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from control_plane.catalog.entities import Action, VersionState
from control_plane.catalog.store import CatalogStore
from tests.support.servers import (
    ServerProcess,
    free_port,
    serve_command,
    start_server,
    stop_server,
)
from tfsgate.core.protos import (
    get_model_status_pb2,
    model_management_pb2,
    model_server_config_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    types_pb2,
)

PG_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
# Broken versions fail at once here (TF Serving would retry a failed load 5 times, a minute
# apart: test_load_retries_e2e.py).
POLL = [
    "--model_config_file_poll_wait_seconds=1",
    "--file_system_poll_wait_seconds=1",
    "--max_num_load_retries=0",
]
B_VALUES = (2.0, 3.0, 4.0)  # one template SavedModel per b


# -- helpers -----------------------------------------------------------------------------------
def answer(b: float, x: float = 1.0) -> float:
    return 0.5 * x + b


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except (httpx.HTTPError, grpc.RpcError, OSError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


def predict(server: ServerProcess, path: str, x: float = 1.0) -> httpx.Response:
    return httpx.post(
        f"{server.rest_url}/v1/models/{path}:predict", json={"instances": [x]}, timeout=30
    )


def prediction(server: ServerProcess, path: str, x: float = 1.0) -> float | None:
    response = predict(server, path, x)
    return float(response.json()["predictions"][0]) if response.status_code == 200 else None


def status(server: ServerProcess, model: str) -> dict[str, tuple[str, str]] | None:
    """``{version: (state, error_message)}`` from the REST status JSON; None on 404."""
    response = httpx.get(f"{server.rest_url}/v1/models/{model}", timeout=10)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return {
        s["version"]: (s["state"], s["status"]["error_message"])
        for s in response.json()["model_version_status"]
    }


def grpc_predict(
    server: ServerProcess, model: str, *, label: str = "", version: int | None = None
) -> predict_pb2.PredictResponse:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    if label:
        request.model_spec.version_label = label
    if version is not None:
        request.model_spec.version.value = version
    tensor = request.inputs["x"]
    tensor.dtype = types_pb2.DT_FLOAT
    tensor.tensor_shape.dim.add(size=1)
    tensor.tensor_shape.dim.add(size=1)
    tensor.float_val.append(1.0)
    with grpc.insecure_channel(server.grpc_target) as channel:
        return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            request, timeout=30
        )


def copy_saved_model(template: Path, target: Path) -> float:
    """Copy into a hidden sibling, then rename into place; returns when the rename happened."""
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".copy-{target.name}-"))
    shutil.copytree(template, staging / "v")
    (staging / "v").rename(target)
    appeared = time.monotonic()
    staging.rmdir()
    return appeared


def write_config_text(path: Path, text: str) -> None:
    """Replace a config file in one rename, as an operator's deploy tool would."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}")
    tmp.write_text(text)
    os.replace(tmp, path)


def model_config_text(models: dict[str, Path], labels: dict[str, dict[str, int]]) -> str:
    config = model_server_config_pb2.ModelServerConfig()
    for name, base in models.items():
        entry = config.model_config_list.config.add(
            name=name, base_path=str(base), model_platform="tensorflow"
        )
        for label, version in labels.get(name, {}).items():
            entry.version_labels[label] = version
    from google.protobuf import text_format

    return text_format.MessageToString(config)


def catalog_states(url: str, model: str) -> dict[int, tuple[VersionState, str]]:
    store = CatalogStore.from_url(url)
    try:
        return {v.version: (v.state, v.state_reason) for v in store.list_model_versions(model)}
    finally:
        store.close()


def catalog_labels(url: str, model: str) -> dict[str, int]:
    store = CatalogStore.from_url(url)
    try:
        return store.list_labels(model)
    finally:
        store.close()


def catalog_creates(url: str) -> list[tuple[str, int | None]]:
    store = CatalogStore.from_url(url)
    try:
        events = store.list_events(limit=100_000)
    finally:
        store.close()
    return [(e.model, e.version) for e in events if e.action == Action.CREATE_MODEL_VERSION]


@dataclass
class Hammer:
    """A client thread predicting ``path`` in a loop; records every answer and failure."""

    server: ServerProcess
    path: str
    answers: list[tuple[float, float]] = field(default_factory=list)  # (monotonic time, y)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            url = f"{self.server.rest_url}/v1/models/{self.path}:predict"
            while not self._stop.is_set():
                try:
                    response = client.post(url, json={"instances": [1.0]})
                except httpx.HTTPError as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code}: {response.text}")
                    continue
                self.answers.append((time.monotonic(), float(response.json()["predictions"][0])))

    def __enter__(self) -> Hammer:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=60)

    def first_answer(self, y: float) -> float | None:
        return next((t for t, got in self.answers if got == y), None)


def leftovers(root: Path) -> list[Path]:
    """Hidden or temporary entries anywhere under ``root``."""
    return [
        p
        for p in root.rglob("*")
        if p.name.startswith(".") or "staging" in p.name or p.name.endswith((".old", ".tmp"))
    ]


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[float, Path]:
    """One SavedModel per ``b`` in B_VALUES, written by one TensorFlow child process."""
    root = tmp_path_factory.mktemp("templates")
    targets = {b: root / f"b{int(b)}" for b in B_VALUES}
    code = (
        "import os, sys; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'\n"
        "from tfsgate.examples import write_half_plus_two\n"
        "for arg in sys.argv[1:]:\n"
        "    b, path = arg.split('=', 1)\n"
        "    write_half_plus_two(path, b=float(b))\n"
    )
    args = [f"{b}={path}" for b, path in targets.items()]
    subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True)
    return targets


@dataclass
class Deployment:
    """A restartable ``tfsgate serve``: same home, args and repository on every start."""

    home: Path
    args: list[str]
    model: str
    catalog_url: str
    server: ServerProcess | None = None
    _context: Any = None

    def start(self) -> ServerProcess:
        self._context = start_server(self.home, self.args, model=self.model)
        self.server = self._context.__enter__()
        return self.server

    def stop(self) -> int:
        assert self._context is not None and self.server is not None
        code = stop_server(self.server)
        self._context.__exit__(None, None, None)
        self._context = None
        return code

    @property
    def repository(self) -> Path:
        return self.home / "model_repository"


@pytest.fixture(scope="module")
def fleet(
    templates: dict[float, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("fleet")
    bases = {"m1": root / "models" / "m1", "m2": root / "models" / "m2"}
    for base in bases.values():
        base.mkdir(parents=True)
        shutil.copytree(templates[2.0], base / "1")
    config = root / "models.config"
    config.write_text(model_config_text(bases, {"m2": {"stable": 1}}))
    home = root / "home"
    deployment = Deployment(
        home,
        [f"--model_config_file={config}", *POLL],
        "m1",
        f"sqlite:///{home / 'catalog.db'}",
    )
    deployment.start()
    try:
        yield deployment
    finally:
        if deployment._context is not None:
            deployment.stop()


# -- start-up ----------------------------------------------------------------------------------
def test_unparseable_config_at_start_fails_as_tf_serving_does(tmp_path: Path) -> None:
    """protobuf's parse error on stderr (TF Serving's test greps it), then main()'s
    "Failed to start server" status on stdout, exit status 255 (main returns -1)."""
    config = tmp_path / "broken.config"
    config.write_text("model_config_list { config { name: 'm' base_path: ")
    command = serve_command(
        tmp_path / "home", [f"--model_config_file={config}"], free_port(), free_port()
    )
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 255
    assert done.stdout == (
        f"Failed to start server. Error: INVALID_ARGUMENT: Invalid protobuf file: '{config}'\n"
    )
    assert "Error parsing text-format tensorflow.serving.ModelServerConfig: 1:" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


# -- the fleet: text config, polls, swaps, failures, restarts ----------------------------------
def test_text_config_serves_both_models(fleet: Deployment) -> None:
    server = fleet.server
    assert server is not None
    for model in ("m1", "m2"):
        assert prediction(server, model) == answer(2.0)
        assert status(server, model) == {"1": ("AVAILABLE", "")}


def test_half_copied_version_is_ignored_and_new_version_swaps_without_failures(
    fleet: Deployment, templates: dict[float, Path]
) -> None:
    server = fleet.server
    assert server is not None
    base = fleet.home.parent / "models" / "m1"
    # Version 3 is half-copied (variables, no saved_model.pb yet): never a candidate for latest.
    shutil.copytree(templates[4.0] / "variables", base / "3" / "variables")
    with Hammer(server, "m1") as hammer:
        wait_for(lambda: len(hammer.answers) > 5, 30, "the client to get answers")
        appeared = copy_saved_model(templates[3.0], base / "2")
        wait_for(lambda: hammer.first_answer(answer(3.0)), 120, "version 2 to answer")
        wait_for(
            lambda: status(server, "m1") == {"1": ("END", ""), "2": ("AVAILABLE", "")},
            60,
            "version 1 to end",
        )
        # Keep predicting a moment after the swap: nothing may still route to version 1.
        settled = len(hammer.answers)
        wait_for(lambda: len(hammer.answers) > settled + 20, 30, "answers after the swap")
    first = hammer.first_answer(answer(3.0))
    assert first is not None
    print(f"\nversion swap: new directory to first answer from it: {first - appeared:.2f}s")
    assert hammer.failures == []
    values = [y for _, y in hammer.answers]
    switch = values.index(answer(3.0))
    assert set(values[:switch]) == {answer(2.0)} and set(values[switch:]) == {answer(3.0)}
    assert "3" not in (status(server, "m1") or {})
    assert 3 not in catalog_states(fleet.catalog_url, "m1")
    shutil.rmtree(base / "3")


def test_broken_versions_fail_with_reason_while_previous_keeps_serving(
    fleet: Deployment, templates: dict[float, Path]
) -> None:
    server = fleet.server
    assert server is not None
    base = fleet.home.parent / "models" / "m1"
    with Hammer(server, "m1") as hammer:
        # Version 3: saved_model.pb is garbage, conversion fails.
        garbage = fleet.home.parent / "garbage"
        shutil.copytree(templates[4.0], garbage)
        (garbage / "saved_model.pb").write_bytes(b"\x00not a SavedModel\xff" * 64)
        copy_saved_model(garbage, base / "3")
        states = wait_for(
            lambda: (s := status(server, "m1")) and s.get("3", ("", ""))[1] and s,
            60,
            "version 3 to fail",
        )
        assert states["3"][0] == "END" and states["2"] == ("AVAILABLE", "")
        # Version 4: a readable graph without its variables: TensorFlow fails at load.
        no_vars = fleet.home.parent / "no_vars"
        shutil.copytree(templates[4.0], no_vars)
        shutil.rmtree(no_vars / "variables")
        copy_saved_model(no_vars, base / "4")
        states = wait_for(
            lambda: (s := status(server, "m1")) and s.get("4", ("", ""))[1] and s,
            180,
            "version 4 to fail",
        )
        assert states["4"][0] == "END" and states["2"] == ("AVAILABLE", "")
    assert hammer.failures == []
    assert {y for _, y in hammer.answers} == {answer(3.0)}
    catalog = catalog_states(fleet.catalog_url, "m1")
    assert catalog[2][0] == VersionState.AVAILABLE
    for version in (3, 4):
        state, reason = catalog[version]
        assert state == VersionState.FAILED and reason, catalog
        assert states[str(version)][1] == reason
    print(f"\nversion 3 failed: {catalog[3][1][:200]}\nversion 4 failed: {catalog[4][1][:200]}")


def test_broken_config_edit_is_ignored_and_label_rule_applies(fleet: Deployment) -> None:
    server = fleet.server
    assert server is not None
    config = Path(fleet.args[0].split("=", 1)[1])
    write_config_text(config, "model_config_list { config { name: 'm1' ")
    wait_for(lambda: "Failed to read ModelServerConfig file" in server.log(), 30, "the edit")
    for model in ("m1", "m2"):
        assert predict(server, model).status_code == 200
    # A valid edit: label stable on AVAILABLE version 2, canary on FAILED version 3 (refused:
    # this server runs without --allow_version_labels_for_unavailable_models).
    bases = {"m1": config.parent / "models" / "m1", "m2": config.parent / "models" / "m2"}
    labels = {"m1": {"stable": 2, "canary": 3}, "m2": {"stable": 1}}
    write_config_text(config, model_config_text(bases, labels))
    wait_for(lambda: prediction(server, "m1/labels/stable") == answer(3.0), 30, "label stable")
    response = predict(server, "m1/labels/canary")
    assert response.status_code == 400
    assert "Unrecognized servable version label: canary" in response.json()["error"]
    assert catalog_labels(fleet.catalog_url, "m1") == {"stable": 2}
    assert "label canary of m1 -> 3" in server.log()


def test_triton_killed_is_restarted_and_serves_again(fleet: Deployment) -> None:
    server = fleet.server
    assert server is not None
    endpoints = server.home / "triton" / "endpoints.json"
    old_pid = json.loads(endpoints.read_text())["pid"]
    os.kill(old_pid, signal.SIGKILL)
    killed = time.monotonic()
    wait_for(lambda: prediction(server, "m1") == answer(3.0), 120, "m1 to answer again")
    recovered = time.monotonic() - killed
    wait_for(lambda: prediction(server, "m2") == answer(2.0), 60, "m2 to answer again")
    print(f"\ntriton kill -9 to first successful prediction: {recovered:.2f}s")
    assert json.loads(endpoints.read_text())["pid"] != old_pid
    m1 = status(server, "m1") or {}
    assert {v: state for v, (state, _) in m1.items()} == {
        "1": "END",
        "2": "AVAILABLE",
        "3": "END",  # FAILED versions stay failed (with their reason) across the restart
        "4": "END",
    }
    assert m1["3"][1] and m1["4"][1]
    assert status(server, "m2") == {"1": ("AVAILABLE", "")}
    assert catalog_states(fleet.catalog_url, "m2") == {1: (VersionState.AVAILABLE, "")}
    assert prediction(server, "m1/labels/stable") == answer(3.0)


def test_restart_keeps_state_without_reconverting(fleet: Deployment) -> None:
    server = fleet.server
    assert server is not None
    before = {model: status(server, model) for model in ("m1", "m2")}
    labels = {model: catalog_labels(fleet.catalog_url, model) for model in ("m1", "m2")}
    runners = sorted(fleet.repository.glob("*/*/model.py"))
    mtimes = {path: path.stat().st_mtime_ns for path in runners}
    creates = catalog_creates(fleet.catalog_url)
    assert fleet.stop() == 0
    server = fleet.start()
    assert {model: status(server, model) for model in ("m1", "m2")} == before
    assert {model: catalog_labels(fleet.catalog_url, model) for model in ("m1", "m2")} == labels
    assert prediction(server, "m1") == answer(3.0)
    assert prediction(server, "m1/labels/stable") == answer(3.0)
    assert prediction(server, "m2/labels/stable") == answer(2.0)
    assert sorted(fleet.repository.glob("*/*/model.py")) == runners
    assert {path: path.stat().st_mtime_ns for path in runners} == mtimes
    assert catalog_creates(fleet.catalog_url) == creates


def test_config_edit_removes_a_model_while_the_other_serves(fleet: Deployment) -> None:
    server = fleet.server
    assert server is not None
    config = Path(fleet.args[0].split("=", 1)[1])
    with Hammer(server, "m1") as hammer:
        wait_for(lambda: len(hammer.answers) > 5, 30, "the client to get answers")
        m1 = {"m1": config.parent / "models" / "m1"}
        write_config_text(config, model_config_text(m1, {"m1": {"stable": 2}}))
        wait_for(lambda: predict(server, "m2").status_code == 404, 60, "m2 to go")
        settled = len(hammer.answers)
        wait_for(lambda: len(hammer.answers) > settled + 20, 30, "answers after the removal")
    assert hammer.failures == []
    assert {y for _, y in hammer.answers} == {answer(3.0)}
    assert status(server, "m2") is None
    ended = {1: (VersionState.END, "")}  # set once Triton has unloaded it, after the 404s
    wait_for(lambda: catalog_states(fleet.catalog_url, "m2") == ended, 30, "m2 version 1 END")
    triton = json.loads((server.home / "triton" / "endpoints.json").read_text())["http_url"]
    index = httpx.post(f"{triton}/v2/repository/index", json={"ready": True}, timeout=10).json()
    assert index and all(m["name"].startswith("m1__") and m["version"] == "2" for m in index)


def test_fleet_leaves_nothing_half_written(fleet: Deployment) -> None:
    assert leftovers(fleet.repository) == []
    staging = fleet.home / ".model_repository.staging"
    assert not staging.exists() or list(staging.iterdir()) == []
    assert leftovers(fleet.home.parent / "models") == []


# -- policies, labels and gRPC reload ----------------------------------------------------------
@pytest.fixture(scope="module")
def catalog_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh PostgreSQL database when the server is reachable, else SQLite."""
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect():
            pass
    except Exception:  # noqa: BLE001 - no PostgreSQL here: the same flows over SQLite
        engine.dispose()
        yield f"sqlite:///{tmp_path_factory.mktemp('policies-db') / 'catalog.db'}"
        return
    name = f"tfsgate_e2e_{uuid.uuid4().hex[:12]}"
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield engine.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture(scope="module")
def policies(
    templates: dict[float, Path], catalog_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("policies")
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
    deployment.start()
    try:
        yield deployment
    finally:
        if deployment._context is not None:
            deployment.stop()


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
    assert prediction(server, "n") == answer(4.0)


def test_policies_leave_nothing_half_written(policies: Deployment) -> None:
    assert leftovers(policies.repository) == []
    staging = policies.home / ".model_repository.staging"
    assert not staging.exists() or list(staging.iterdir()) == []
