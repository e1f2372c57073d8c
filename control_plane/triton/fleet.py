"""Several Triton instances driven as one repository (``--triton_url`` repeated).

The reconciler sees one repository: a load or unload goes to every instance at once; an
instance that does not answer is skipped (it is brought up to date when it is back), one that
refuses fails the call. ``sync`` (every second) brings each reachable instance to what was last
loaded: an instance that restarted empty, or missed loads while it was down, is loaded again
without the catalog noticing (the other instances kept serving).

The reconciler's index is the instances' agreement: a version is READY when every reachable
instance has it, or when some have it and this fleet knows its config (``sync`` completes the
others). So a new leader, which knows no configs yet, loads whatever one instance lacks.
Pushed files (``--triton_push_model_files``) make no difference here: what is loaded is read
from each instance's statistics (``TritonRepositoryClient.loaded``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from tritonclient.grpc import model_config_pb2

from control_plane.triton.repository import (
    IndexEntry,
    ModelStatistics,
    RepositoryError,
    TritonRepositoryClient,
)
from tfsgate.core.pauses import pause

log = logging.getLogger(__name__)
SYNC_SECONDS = 1.0


def _versions(config: model_config_pb2.ModelConfig) -> set[int]:
    return {int(v) for v in config.version_policy.specific.versions}


class TritonFleet:
    def __init__(self, instances: Sequence[TritonRepositoryClient]) -> None:
        self.instances = list(instances)
        self.name = ",".join(i.name for i in self.instances)
        self._configs: dict[str, model_config_pb2.ModelConfig] = {}  # last loaded, per model
        self._retired: set[str] = set()  # unloaded: unload where it is still found
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def close(self) -> None:
        for instance in self.instances:
            with contextlib.suppress(Exception):
                await instance.close()

    async def ready(self) -> bool:
        return any(await asyncio.gather(*(i.ready() for i in self.instances)))

    async def _each(self, calls: Sequence[object], what: str) -> list[object]:
        """Results per instance; unreachable instances give their RepositoryError, any other
        failure is raised; all unreachable is a failure too."""
        results = await asyncio.gather(*calls, return_exceptions=True)  # type: ignore[call-overload]
        refused = [r for r in results if isinstance(r, BaseException) and not _unreachable(r)]
        if refused:
            raise refused[0]
        if all(isinstance(r, BaseException) for r in results):
            raise RepositoryError(f"{what}: no Triton instance answers: {results[0]}", True)
        for instance, result in zip(self.instances, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("%s: Triton %s unreachable, skipped: %s", what, instance.name, result)
        return list(results)

    async def load(self, name: str, config: model_config_pb2.ModelConfig | None = None) -> None:
        async with self._locks[name]:
            if config is not None:
                self._configs[name] = config
            self._retired.discard(name)
            await self._each([i.load(name, config) for i in self.instances], f"load {name}")

    async def unload(self, name: str, wait: float = 60.0) -> None:
        async with self._locks[name]:
            self._configs.pop(name, None)
            self._retired.add(name)
            await self._each([i.unload(name, wait) for i in self.instances], f"unload {name}")

    async def index(self, name: str | None = None) -> list[IndexEntry]:
        results = await self._each([i.loaded() for i in self.instances], "index")
        loaded = [r for r in results if isinstance(r, dict)]
        found: dict[tuple[str, int], int] = defaultdict(int)
        for models in loaded:
            for model, versions in models.items():
                for version in versions:
                    found[model, version] += 1
        entries = []
        for (model, version), count in sorted(found.items()):
            if name is not None and model != name:
                continue
            known = model in self._configs and version in _versions(self._configs[model])
            state = "READY" if count == len(loaded) or known else "UNAVAILABLE"
            entries.append(IndexEntry(model, version, state, ""))
        return entries

    async def sync(self) -> None:
        """Bring every reachable instance to the last loads and unloads."""
        for instance in self.instances:
            try:
                loaded = await instance.loaded()
            except RepositoryError:
                continue  # down: synced when it answers again
            for name, config in list(self._configs.items()):
                if _versions(config) <= loaded.get(name, set()):
                    continue
                async with self._locks[name]:
                    if self._configs.get(name) is not config:
                        continue  # changed meanwhile: that load went everywhere
                    log.info("Triton %s lacks %s: loading it there", instance.name, name)
                    try:
                        await instance.load(name, config)
                    except RepositoryError as exc:
                        log.warning("Triton %s: loading %s failed: %s", instance.name, name, exc)
            for name in self._retired & set(loaded):
                async with self._locks[name]:
                    if name in self._retired:
                        with contextlib.suppress(RepositoryError):
                            await instance.unload(name)

    async def run_sync(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            if await pause(stopping, SYNC_SECONDS):
                return
            try:
                await self.sync()
            except Exception:  # noqa: BLE001 - logged; the next round retries
                log.exception("Triton fleet sync failed")

    async def infer(
        self, name: str, version: int, inputs: dict[str, np.ndarray], timeout: float = 300.0
    ) -> None:
        """The warm-up replay, on every instance (each has its own cold start)."""
        await self._each(
            [i.infer(name, version, inputs, timeout) for i in self.instances], f"warm up {name}"
        )

    async def statistics(self, name: str) -> dict[int, ModelStatistics]:
        """Triton's counters of one model, summed over the instances that answer."""
        results = await self._each([i.statistics(name) for i in self.instances], "statistics")
        total: dict[int, ModelStatistics] = {}
        for result in results:
            if not isinstance(result, dict):
                continue
            for version, stats in result.items():
                seen = total.get(version)
                total[version] = stats if seen is None else _add(seen, stats)
        return total


def _unreachable(exc: BaseException) -> bool:
    return isinstance(exc, RepositoryError) and exc.unreachable


def _add(a: ModelStatistics, b: ModelStatistics) -> ModelStatistics:
    return ModelStatistics(
        a.inference_count + b.inference_count,
        a.execution_count + b.execution_count,
        a.cache_hits + b.cache_hits,
        a.cache_misses + b.cache_misses,
    )
