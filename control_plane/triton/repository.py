"""Triton's model-repository API over gRPC: load (with config override), unload, index.

Repository calls go over gRPC because over HTTP a load blocks Triton's HTTP workers. Triton's unload
returns before the model is gone, so ``unload`` polls the index until no version is READY.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from google.protobuf import json_format
from tritonclient.grpc import model_config_pb2
from tritonclient.utils import InferenceServerException


class RepositoryError(RuntimeError):
    """A repository call failed; ``message`` is Triton's own words."""


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


def _connect(grpc_url: str) -> Any:
    import tritonclient.grpc.aio as triton_grpc

    return triton_grpc.InferenceServerClient(grpc_url)


class TritonRepositoryClient:
    def __init__(self, grpc_url: str, timeout: float = 300.0, name: str = "") -> None:
        self._client = _connect(grpc_url)
        self.timeout = timeout
        self.name = name or grpc_url  # the instance's label in metrics, kept across repoints

    async def repoint(self, grpc_url: str) -> None:
        """Switch to a restarted Triton, which listens on new ports."""
        old, self._client = self._client, _connect(grpc_url)
        await old.close()

    async def close(self) -> None:
        await self._client.close()

    async def ready(self) -> bool:
        """Whether Triton answers READY (``/v2/health/ready``); False when it does not answer."""
        try:
            return bool(await self._client.is_server_ready(client_timeout=2.0))
        except InferenceServerException:
            return False

    async def load(self, name: str, config: model_config_pb2.ModelConfig | None = None) -> None:
        """Load or reload ``name``; with ``config`` Triton uses it instead of config.pbtxt.

        Triton treats a load with unchanged files as a no-op unless a config override is passed,
        so the reconciler always passes one (it also carries the version policy).
        """
        override = json_format.MessageToJson(config) if config is not None else None
        try:
            await self._client.load_model(name, config=override, client_timeout=self.timeout)
        except InferenceServerException as exc:
            raise RepositoryError(exc.message() or str(exc)) from exc

    async def unload(self, name: str, wait: float = 60.0) -> None:
        try:
            await self._client.unload_model(name, client_timeout=self.timeout)
        except InferenceServerException as exc:
            raise RepositoryError(exc.message() or str(exc)) from exc
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not any(e.state in ("READY", "UNLOADING") for e in await self.index(name)):
                return
            await asyncio.sleep(0.05)
        raise RepositoryError(f"model {name} still loaded {wait:.0f}s after unload")

    async def index(self, name: str | None = None) -> list[IndexEntry]:
        try:
            response = await self._client.get_model_repository_index(client_timeout=30.0)
        except InferenceServerException as exc:
            raise RepositoryError(exc.message() or str(exc)) from exc
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
                name, tensors, model_version=str(version), client_timeout=timeout
            )
        except InferenceServerException as exc:
            raise RepositoryError(exc.message() or str(exc)) from exc

    async def statistics(self, name: str) -> dict[int, ModelStatistics]:
        """Triton's per-version counters of one model (inferences, executions, cache)."""
        try:
            response = await self._client.get_inference_statistics(name, client_timeout=30.0)
        except InferenceServerException as exc:
            raise RepositoryError(exc.message() or str(exc)) from exc
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
