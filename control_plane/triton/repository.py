"""Triton's model-repository API over gRPC: load (with config override), unload, index.

Repository calls go over gRPC because over HTTP a load blocks Triton's HTTP workers. Triton's unload
returns before the model is gone, so ``unload`` polls until no version is READY.

- A Triton started with ``--grpc-restricted-protocol=model-repository:tfsgate-repository-key=K``
  answers repository calls over gRPC only with the header
  ``triton-grpc-protocol-tfsgate-repository-key: K`` (``--triton_repository_key``); every call
  here sends it.
- An instance that shares no volume with the control plane gets the model's files with the load
  request (``--triton_push_model_files``: Triton's ``file:<path>`` load parameters beside the
  config). Models loaded that way are not in Triton's repository index, so what is loaded is read
  from its inference statistics (``loaded``), which list every READY model version.
- Several instances: ``control_plane/triton/fleet.py``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from google.protobuf import json_format
from tritonclient.grpc import model_config_pb2
from tritonclient.utils import InferenceServerException

from tfsgate.core.defaults import TRITON_CHANNEL_OPTIONS

# The key's name in --grpc-restricted-protocol; over gRPC Triton reads it with this prefix.
REPOSITORY_KEY_NAME = "tfsgate-repository-key"
REPOSITORY_KEY_HEADER = f"triton-grpc-protocol-{REPOSITORY_KEY_NAME}"
_UNREACHABLE = ("StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED")


class RepositoryError(RuntimeError):
    """A repository call failed; ``message`` is Triton's own words. ``unreachable``: the instance
    did not answer (down, restarting), as opposed to refusing the call."""

    def __init__(self, message: str, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def _error(exc: InferenceServerException) -> RepositoryError:
    return RepositoryError(exc.message() or str(exc), str(exc.status()) in _UNREACHABLE)


@dataclass(frozen=True)
class IndexEntry:
    name: str
    version: int | None
    state: str  # READY, UNAVAILABLE, LOADING, UNLOADING, "" (never loaded)
    reason: str


@dataclass(frozen=True)
class ModelStatistics:
    inference_count: int  # requests' rows answered
    execution_count: int  # runner calls (dynamic batching makes it smaller)
    cache_hits: int
    cache_misses: int


class Repository(Protocol):
    """What the reconciler drives: one instance (``TritonRepositoryClient``) or several
    (``control_plane/triton/fleet.py``)."""

    name: str

    async def load(self, name: str, config: model_config_pb2.ModelConfig | None = None) -> None: ...

    async def unload(self, name: str, wait: float = 60.0) -> None: ...

    async def index(self, name: str | None = None) -> list[IndexEntry]: ...

    async def infer(
        self, name: str, version: int, inputs: dict[str, np.ndarray], timeout: float = 300.0
    ) -> None: ...

    async def statistics(self, name: str) -> dict[int, ModelStatistics]: ...

    async def ready(self) -> bool: ...

    async def close(self) -> None: ...


def _connect(grpc_url: str) -> Any:
    import tritonclient.grpc.aio as triton_grpc

    return triton_grpc.InferenceServerClient(
        grpc_url, channel_args=[*TRITON_CHANNEL_OPTIONS, *_UNLIMITED]
    )


_UNLIMITED = (("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1))


def model_files(directory: Path) -> dict[str, bytes]:
    """A Triton model directory's files as a load request carries them: ``file:<path in the
    model directory>`` parameters (``config.pbtxt`` apart: the config is the override)."""
    return {
        f"file:{path.relative_to(directory)}": path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.relative_to(directory) != Path("config.pbtxt")
    }


class TritonRepositoryClient:
    def __init__(
        self,
        grpc_url: str,
        timeout: float = 300.0,
        name: str = "",
        key: str = "",
        push_from: Path | None = None,
    ) -> None:
        """``key``: the repository protocol's key; ``push_from``: the control plane's model
        repository, whose files are sent with each load (the instance has no copy)."""
        self._client = _connect(grpc_url)
        self.url = grpc_url
        self.timeout = timeout
        self.name = name or grpc_url  # the instance's label in metrics, kept across repoints
        self.headers = {REPOSITORY_KEY_HEADER: key} if key else None
        self.push_from = push_from

    async def repoint(self, grpc_url: str) -> None:
        """Switch to a restarted Triton, which listens on new ports."""
        old, self._client = self._client, _connect(grpc_url)
        self.url = grpc_url
        await old.close()

    async def close(self) -> None:
        await self._client.close()

    async def ready(self) -> bool:
        """Whether Triton answers READY (``/v2/health/ready``); False when it does not answer."""
        try:
            return bool(
                await self._client.is_server_ready(headers=self.headers, client_timeout=2.0)
            )
        except InferenceServerException:
            return False

    async def load(self, name: str, config: model_config_pb2.ModelConfig | None = None) -> None:
        """Load or reload ``name``; with ``config`` Triton uses it instead of config.pbtxt.

        Triton treats a load with unchanged files as a no-op unless a config override is passed,
        so the reconciler always passes one (it also carries the version policy).
        """
        override = json_format.MessageToJson(config) if config is not None else None
        files = None
        if self.push_from is not None and override is not None:
            files = await asyncio.to_thread(model_files, self.push_from / name)
        try:
            await self._client.load_model(
                name,
                headers=self.headers,
                config=override,
                files=files,
                client_timeout=self.timeout,
            )
        except InferenceServerException as exc:
            raise _error(exc) from exc

    async def unload(self, name: str, wait: float = 60.0) -> None:
        try:
            await self._client.unload_model(name, headers=self.headers, client_timeout=self.timeout)
        except InferenceServerException as exc:
            raise _error(exc) from exc
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.push_from is not None:  # pushed models are not in the index
                if name not in await self.loaded():
                    return
            elif not any(e.state in ("READY", "UNLOADING") for e in await self.index(name)):
                return
            await asyncio.sleep(0.05)
        raise RepositoryError(f"model {name} still loaded {wait:.0f}s after unload")

    async def index(self, name: str | None = None) -> list[IndexEntry]:
        try:
            response = await self._client.get_model_repository_index(
                headers=self.headers, client_timeout=30.0
            )
        except InferenceServerException as exc:
            raise _error(exc) from exc
        entries = []
        for model in response.models:
            if name is not None and model.name != name:
                continue
            version = int(model.version) if model.version else None
            entries.append(IndexEntry(model.name, version, model.state, model.reason))
        return entries

    async def infer(
        self, name: str, version: int, inputs: dict[str, np.ndarray], timeout: float = 300.0
    ) -> None:
        """One inference whose answer is dropped: the control plane's warm-up replay (requests
        go to a version before it is routed, so not through the gateway)."""
        import tritonclient.grpc.aio as triton_grpc
        from tritonclient.utils import np_to_triton_dtype

        tensors = []
        for key, value in inputs.items():
            dtype = "BYTES" if value.dtype.kind in "OSU" else np_to_triton_dtype(value.dtype)
            tensor = triton_grpc.InferInput(key, list(value.shape), dtype)
            tensor.set_data_from_numpy(value)
            tensors.append(tensor)
        try:
            await self._client.infer(
                name,
                tensors,
                model_version=str(version),
                headers=self.headers,
                client_timeout=timeout,
            )
        except InferenceServerException as exc:
            raise _error(exc) from exc

    async def statistics(self, name: str) -> dict[int, ModelStatistics]:
        """Triton's per-version counters of one model (inferences, executions, cache)."""
        try:
            response = await self._client.get_inference_statistics(
                name, headers=self.headers, client_timeout=30.0
            )
        except InferenceServerException as exc:
            raise _error(exc) from exc
        found = {}
        for stats in response.model_stats:
            if not stats.version:
                continue
            found[int(stats.version)] = ModelStatistics(
                inference_count=int(stats.inference_count),
                execution_count=int(stats.execution_count),
                cache_hits=int(stats.inference_stats.cache_hit.count),
                cache_misses=int(stats.inference_stats.cache_miss.count),
            )
        return found

    async def loaded(self) -> dict[str, set[int]]:
        """Every READY model and its versions, pushed or not (Triton's statistics list them)."""
        try:
            response = await self._client.get_inference_statistics(
                "", headers=self.headers, client_timeout=10.0
            )
        except InferenceServerException as exc:
            raise _error(exc) from exc
        found: dict[str, set[int]] = {}
        for stats in response.model_stats:
            if stats.version:
                found.setdefault(stats.name, set()).add(int(stats.version))
        return found
