"""The admin API under test: a real catalog, reconciler and converter over an in-memory Triton
repository, and the AdminServer on a free port in its own event-loop thread, so tests talk plain
HTTP with httpx. The fixtures that build it are in tests/control_plane/api/conftest.py."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx
from pydantic import SecretStr
from tritonclient.grpc import model_config_pb2 as mc

from control_plane.api import AdminSettings
from control_plane.catalog import CatalogStore
from control_plane.converter.writer import SavedModelConverter
from control_plane.reconciler import Reconciler, ReconcilerSettings
from control_plane.sources.model_config import ModelSetConfig, ModelSpecConfig
from control_plane.triton.repository import IndexEntry, TritonRepositoryClient
from gateway.routing import Router
from tfsgate.admin_door import AdminServer
from tfsgate.core.version_policy import VersionPolicy

TOKEN = "s3cret-token"
MODEL = "half_plus_two"
T = TypeVar("T")


class InMemoryTritonRepository:
    """Triton's repository API as the reconciler uses it: a load's config override decides
    which versions are READY; unload drops them. Nothing runs."""

    name = "in-memory"  # the instance label of the reconciler's metrics

    def __init__(self) -> None:
        self.ready: dict[str, set[int]] = {}

    async def load(self, name: str, config: mc.ModelConfig | None = None) -> None:
        assert config is not None
        self.ready[name] = set(config.version_policy.specific.versions)

    async def unload(self, name: str, wait: float = 60.0) -> None:
        self.ready.pop(name, None)

    async def index(self, name: str | None = None) -> list[IndexEntry]:
        return [
            IndexEntry(model, version, "READY", "")
            for model, versions in self.ready.items()
            for version in sorted(versions)
            if name in (None, model)
        ]

    async def close(self) -> None:
        return None


class LoopThread:
    """An event loop in a daemon thread: the server lives there, tests stay synchronous."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@dataclass
class AdminEnv:
    url: str
    store: CatalogStore
    router: Router
    reconciler: Reconciler
    roots: Path  # TFSGATE_MODEL_ROOTS
    base_path: Path  # the configured model's base path
    saved_model: Path  # a half_plus_two SavedModel to copy versions from

    def client(self, token: str | None = TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=f"{self.url}/v1/admin", headers=headers, timeout=30)

    def event_count(self) -> int:
        return len(self.store.list_events())


def copy_version(saved_model: Path, base_path: Path, version: int) -> Path:
    return Path(shutil.copytree(saved_model, base_path / str(version)))


def start_admin(url: str, tmp_path: Path, saved_model: Path) -> Iterator[AdminEnv]:
    """Catalog, reconciler (model MODEL, policy all, versions 1 and 2) and a live AdminServer.

    MODEL is served by the TensorFlow runner (``--runner=tensorflow``): its conversions need no
    export child (TensorFlow and tf2onnx, seconds a version). Models a test registers through the
    API have the default runner and convert for real; those tests are marked ``tensorflow``."""
    roots, base_path = tmp_path / "roots", tmp_path / "models" / MODEL
    roots.mkdir()
    for version in (1, 2):
        copy_version(saved_model, base_path, version)
    store = CatalogStore.from_url(url)
    router = Router()
    reconciler = Reconciler(
        store,
        SavedModelConverter(tmp_path / "repo"),
        cast(TritonRepositoryClient, InMemoryTritonRepository()),  # duck-typed stand-in
        router,
        ReconcilerSettings(runner="tensorflow"),
    )
    config = ModelSetConfig(models=(ModelSpecConfig(MODEL, base_path, policy=VersionPolicy.all()),))
    settings = AdminSettings(
        admin_port=0, host="127.0.0.1", admin_token=SecretStr(TOKEN), model_roots=str(roots)
    )
    server = AdminServer(store, reconciler, settings)
    loop = LoopThread()
    try:
        loop.run(reconciler.set_desired(config))
        loop.run(server.start())
        url = f"http://127.0.0.1:{server.port}"
        yield AdminEnv(url, store, router, reconciler, roots, base_path, saved_model)
    finally:
        loop.run(server.stop())
        loop.close()
        store.close()
