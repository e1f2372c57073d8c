"""Helpers for the reconciler's end-to-end tests over real ``tfsgate serve`` processes.

Versions are told apart by their answer: every template SavedModel computes ``0.5 * x + b`` with its
own ``b``, so ``x = 1`` answers ``0.5 + b``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
from google.protobuf import text_format

from control_plane.catalog.entities import Action, VersionState
from control_plane.catalog.store import CatalogStore
from tests.support.load import Failed, Load
from tests.support.models import write_models
from tests.support.servers import ServerProcess, start_server, stop_server
from tests.support.waiting import wait_for
from tfsgate.core.protos import (
    model_server_config_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
    types_pb2,
)

B_VALUES = (2.0, 3.0, 4.0)  # one template SavedModel per b


def write_templates(root: Path) -> dict[float, Path]:
    """One SavedModel per ``b`` in B_VALUES, written by one TensorFlow child process."""
    targets = {b: root / f"b{int(b)}" for b in B_VALUES}
    write_models(*(("half_plus_two", path, {"b": b}) for b, path in targets.items()))
    return targets


def answer(b: float, x: float = 1.0) -> float:
    return 0.5 * x + b


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


class Hammer(Load):
    """A client thread predicting ``path`` in a loop; records every answer and failure."""

    def __init__(self, server: ServerProcess, path: str) -> None:
        self.answers: list[tuple[float, float]] = []  # (monotonic time, y)
        url = f"{server.rest_url}/v1/models/{path}:predict"

        def predict(client: httpx.Client, _: int) -> None:
            response = client.post(url, json={"instances": [1.0]})
            if response.status_code != 200:
                raise Failed(f"{response.status_code}: {response.text}")
            self.answers.append((time.monotonic(), float(response.json()["predictions"][0])))

        super().__init__(predict)

    def first_answer(self, y: float) -> float | None:
        return next((t for t, got in self.answers if got == y), None)


def leftovers(root: Path) -> list[Path]:
    """Hidden or temporary entries anywhere under ``root``."""
    return [
        p
        for p in root.rglob("*")
        if p.name.startswith(".") or "staging" in p.name or p.name.endswith((".old", ".tmp"))
    ]


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

    @contextmanager
    def serving(self) -> Iterator[Deployment]:
        """Started now, stopped at the end unless a test already stopped it."""
        self.start()
        try:
            yield self
        finally:
            if self._context is not None:
                self.stop()

    @property
    def repository(self) -> Path:
        return self.home / "model_repository"


def add_broken_version(base: Path, version: int, template: Path) -> None:
    """A version whose saved_model.pb is garbage: its conversion fails."""
    garbage = base.parent / f".garbage-{version}"
    shutil.copytree(template, garbage)
    (garbage / "saved_model.pb").write_bytes(b"\x00not a SavedModel\xff" * 64)
    copy_saved_model(garbage, base / str(version))
    shutil.rmtree(garbage)


def fail_a_version(server: ServerProcess, base: Path, version: int, template: Path) -> None:
    """Add a broken ``version`` under ``base`` and wait until the server reports it failed."""
    add_broken_version(base, version, template)
    failed_status(server, base.name, version)


def failed_status(server: ServerProcess, model: str, version: int) -> dict[str, tuple[str, str]]:
    """Wait until ``version`` of ``model`` reports an error; the status then."""
    return wait_for(
        lambda: (s := status(server, model)) and s.get(str(version), ("", ""))[1] and s,
        180,
        f"{model} version {version} to fail",
    )


def assert_nothing_half_written(deployment: Deployment, models: Path) -> None:
    """No staging or hidden leftovers in the Triton repository or under the base paths."""
    assert leftovers(deployment.repository) == []
    staging = deployment.home / ".model_repository.staging"
    assert not staging.exists() or list(staging.iterdir()) == []
    assert leftovers(models) == []
