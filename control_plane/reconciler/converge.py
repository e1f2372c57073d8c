"""Converge Triton on the wanted versions: load beside what serves, swap, drain, retire.

Availability is preserved as in TF Serving: a new version is loaded and answering before an old
one is retired; requests are routed away from a retiring version (a new routing table) and given
``drain_seconds`` to reach Triton before it is unloaded; a version that fails keeps the old one
serving. The Triton models serving a version's signatures (the model's shared one and one per
signature otherwise, ``ModelVersion.triton_models``) load side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from tritonclient.grpc import model_config_pb2 as mc

from control_plane.catalog.entities import ModelVersion, VersionState
from control_plane.catalog.store import CatalogStore
from control_plane.converter.writer import SavedModelConverter
from control_plane.reconciler.configs import composing_models, shared_config, signature_configs
from control_plane.reconciler.load_retries import LoadRetries
from control_plane.reconciler.settings import ACTOR, ReconcilerSettings
from control_plane.reconciler.warmup_replay import warm_up
from control_plane.triton.repository import IndexEntry, Repository, RepositoryError
from tfsgate.core.naming import belongs_to, is_shared
from tfsgate.core.signatures import SignatureSpec, signatures_from_json

log = logging.getLogger(__name__)


async def set_state(
    store: CatalogStore, model: str, version: int, state: VersionState, reason: str = ""
) -> None:
    await asyncio.to_thread(
        store.set_model_version_state, model, version, state, reason, actor=ACTOR
    )


class Converger:
    def __init__(
        self,
        store: CatalogStore,
        converter: SavedModelConverter,
        repository: Repository,
        settings: ReconcilerSettings,
        retries: LoadRetries,
        publish: Callable[[], Awaitable[Any]],
    ) -> None:
        self.store = store
        self.converter = converter
        self.repository = repository
        self.settings = settings
        self.retries = retries
        self.publish = publish
        self.failed_loads: set[str] = set()  # models with a failed load in the current pass

    async def _versions(self, model: str) -> dict[int, ModelVersion]:
        listed = await asyncio.to_thread(self.store.list_model_versions, model)
        return {v.version: v for v in listed}

    async def converge(
        self,
        model: str,
        wanted: Iterable[int],
        index: list[IndexEntry],
        reload: Iterable[int] = (),
    ) -> None:
        """Serve ``wanted`` (those not FAILED), retiring the others once a wanted one serves;
        versions in ``reload`` (converted again, or a config setting changed) load again."""
        versions = await self._versions(model)
        asked = set(wanted)
        # TF stops retrying a servable that is no longer aspired; one that waits for its next
        # attempt stays LOADING and is neither loaded nor retired by this pass.
        self.retries.forget(lambda key: key[0] != model or key[1] in asked)
        waiting = {v for v in asked if self.retries.waiting((model, v))}
        wanted = {
            v for v in asked - waiting if v in versions and versions[v].state != VersionState.FAILED
        }
        old = {
            v
            for v, mv in versions.items()
            if v not in wanted | waiting
            and mv.state in (VersionState.AVAILABLE, VersionState.LOADING)
        }
        # Step 1: load the wanted versions beside whatever still serves.
        await self._push(model, versions, wanted | old, index, new=wanted, reload=set(reload))
        versions = await self._versions(model)
        serving = {v for v in wanted if versions[v].state == VersionState.AVAILABLE}
        # Step 2: retire the old ones, but never leave the model with nothing to serve: when
        # every version the policy asks for FAILED, the old ones keep serving. Only a policy
        # that asks for nothing (no versions on disk) retires them without a successor.
        if old and (serving or not asked):
            for v in old:
                await set_state(self.store, model, v, VersionState.UNLOADING)
            # Route away from the old versions before Triton drops them, and let requests
            # already routed there finish: unloading first would fail them.
            await self.publish()
            await asyncio.sleep(self.settings.drain_seconds)
            await self._push(model, versions, serving, await self.repository.index(), new=set())
            for v in old:
                await set_state(self.store, model, v, VersionState.END)

    async def _push(
        self,
        model: str,
        versions: dict[int, ModelVersion],
        target: set[int],
        index: list[IndexEntry],
        new: set[int],
        reload: set[int] | None = None,
    ) -> None:
        """Make every Triton model of ``model`` serve exactly ``target`` versions; versions in
        ``reload`` load even when READY."""
        reload = reload or set()
        response_cache = (await asyncio.to_thread(self.store.get_model, model)).response_cache
        # Triton model -> (its versions wanted, the signatures it serves for them)
        by_triton: dict[str, tuple[set[int], dict[str, SignatureSpec]]] = {}
        for v in sorted(versions):
            for sig, name in versions[v].triton_models().items():
                wanted, specs = by_triton.setdefault(name, (set(), {}))
                if v in target:
                    wanted.add(v)
                    # The newest version's signature wins.
                    specs[sig] = signatures_from_json(versions[v].signatures)[sig]
        for entry in index:
            if belongs_to(model, entry.name) and entry.state == "READY":
                # Unloaded when no version maps to it any more: its versions were converted
                # again under another runner setting, into a shared model or their own.
                by_triton.setdefault(entry.name, (set(), {}))
        failures: dict[int, str] = {}
        loading: set[int] = set()
        loads = []
        for name, (wanted, specs) in by_triton.items():
            ready = {
                e.version
                for e in index
                if e.name == name and e.state == "READY" and e.version is not None
            }
            if ready == wanted and not reload & wanted:
                continue
            loading |= (wanted - ready) | (reload & wanted)
            loads.append(self._load(name, model, specs, wanted, ready - reload, response_cache))
        for v in sorted(loading):
            await set_state(self.store, model, v, VersionState.LOADING)
        # The Triton models of a version load side by side (Triton loads models in parallel, and
        # they share one TensorFlow worker), so a version costs about one load, not one per
        # Triton model.
        for result in await asyncio.gather(*loads):
            failures.update(result)
        if failures:
            self.failed_loads.add(model)
        # Every version set LOADING above ends AVAILABLE or FAILED, including versions that were
        # AVAILABLE before (``versions`` is read before LOADING): after a Triton restart they
        # are all reloaded, and an old version kept serving is not in ``new``.
        for v in sorted(new | loading):
            if v in failures:
                final = self.retries.failed((model, v), failures[v])
                if final is None:  # LoaderHarness: LOADING until the retries run out
                    reason = self.retries.waiting_reason((model, v), failures[v])
                    log.warning("model %s version %s: %s", model, v, reason)
                    await set_state(self.store, model, v, VersionState.LOADING, reason)
                else:
                    await set_state(self.store, model, v, VersionState.FAILED, final)
            elif v in target and (v in loading or versions[v].state != VersionState.AVAILABLE):
                reason = await self._warm_up(model, versions[v]) if v in loading else ""
                if reason:
                    await set_state(self.store, model, v, VersionState.FAILED, reason)
                else:
                    self.retries.succeeded((model, v))
                    await set_state(self.store, model, v, VersionState.AVAILABLE)

    async def _warm_up(self, model: str, version: ModelVersion) -> str:
        return await warm_up(
            self.settings, self.store, self.converter, self.repository, model, version
        )

    async def _load(
        self,
        name: str,
        model: str,
        specs: dict[str, SignatureSpec],
        wanted: set[int],
        ready: set[int],
        response_cache: bool = False,
    ) -> dict[int, str]:
        """Load ``name`` serving ``wanted``; on failure restore ``ready``. Returns the failures."""
        if not wanted or not specs:
            try:
                await self.repository.unload(name)
            except RepositoryError as exc:
                log.warning("unload %s: %s", name, exc)
            if self.settings.flavor == "gpu":  # an ensemble's composing models
                for step in composing_models(name):
                    with contextlib.suppress(RepositoryError):
                        await self.repository.unload(step)
            return {}
        configs = self._configs(name, model, specs, wanted, response_cache)
        try:
            for config in configs:  # composing models before their ensemble
                await self._load_config(config)
            return {}
        except RepositoryError as exc:
            message = str(exc)
        log.error("loading %s versions %s failed: %s", name, sorted(wanted), message)
        entries = {e.version: e for e in await self.repository.index() if e.name == name}
        failed = {
            v: (entries[v].reason if v in entries and entries[v].reason else message)
            for v in wanted - ready
        }
        keep = wanted - set(failed)
        if keep:
            with_keep = self._configs(name, model, specs, keep, response_cache)
            try:
                for config in with_keep:
                    await self._load_config(config)
            except RepositoryError as exc:
                log.error("restoring %s versions %s failed: %s", name, sorted(keep), exc)
        return failed

    def _configs(
        self,
        name: str,
        model: str,
        specs: dict[str, SignatureSpec],
        versions: set[int],
        cache: bool,
    ) -> list[mc.ModelConfig]:
        if is_shared(model, name):
            return [
                shared_config(self.settings, self.converter, name, model, specs, versions, cache)
            ]
        (spec,) = specs.values()
        return signature_configs(self.settings, self.converter, name, model, spec, versions, cache)

    async def _load_config(self, config: mc.ModelConfig) -> None:
        await asyncio.to_thread(self.converter.write_config, config)
        await self.repository.load(config.name, config)

    async def retire_undesired(self, desired: set[str], index: list[IndexEntry]) -> None:
        """Models no longer listed: unload every Triton model of theirs, versions END."""
        for model in await asyncio.to_thread(self.store.list_models):
            if model.name in desired:
                continue
            versions = await asyncio.to_thread(self.store.list_model_versions, model.name)
            live = [v for v in versions if v.state not in (VersionState.END, VersionState.FAILED)]
            if not live:
                continue
            names = {n for v in versions for n in v.triton_models().values()}
            names |= {e.name for e in index if belongs_to(model.name, e.name)}
            for v in live:
                await set_state(self.store, model.name, v.version, VersionState.UNLOADING)
            await self.publish()  # requests get NOT_FOUND from the table, not Triton's errors
            await asyncio.sleep(self.settings.drain_seconds)
            for name in names:
                if any(e.name == name and e.state == "READY" for e in index):
                    await self.repository.unload(name)
            for v in live:
                await set_state(self.store, model.name, v.version, VersionState.END)
