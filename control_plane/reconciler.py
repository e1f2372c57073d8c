"""Drive Triton until it serves what the catalog and TF-Serving's sources ask for.

One pass per trigger (base-path poll, config change, admin action, Triton restart). A pass is
idempotent: it compares the desired versions of every model with Triton's repository index and
loads or unloads only the difference. It preserves availability like TF Serving: a new version is
loaded and answering before an old one is retired, and a version that fails keeps the old one
serving. One model's failure never blocks another's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tritonclient.grpc import model_config_pb2 as mc

from control_plane.catalog.entities import ModelVersion, VersionState
from control_plane.catalog.errors import CatalogError
from control_plane.catalog.store import CatalogStore
from control_plane.converter.naming import triton_model_name
from control_plane.converter.savedmodel import SavedModelError, checksum
from control_plane.converter.triton_config import UnsupportedSignature, build_model_config
from control_plane.converter.writer import SavedModelConverter
from control_plane.sources.base_path import SourceError, discover_versions, no_versions_message
from control_plane.sources.model_config import ModelSetConfig, ModelSpecConfig
from control_plane.sources.version_policy import (
    All,
    Latest,
    Specific,
    VersionPolicy,
    select_versions,
)
from control_plane.triton.repository import IndexEntry, RepositoryError, TritonRepositoryClient
from gateway.routing import ModelRoute, Router, RoutingTable, VersionRoute
from tfsgate.signatures import (
    DEFAULT_SIGNATURE,
    SignatureSpec,
    signatures_from_json,
    signatures_to_json,
)

log = logging.getLogger(__name__)
ACTOR = "reconciler"
TERMINAL = {VersionState.AVAILABLE, VersionState.FAILED}


@dataclass(frozen=True)
class ReconcilerSettings:
    max_batch_size: int = 128
    # Until signatures share one TensorFlow runner per version, only serving_default is served:
    # every signature model costs a stub process that imports TensorFlow (~500 MB).
    all_signatures: bool = False
    allow_version_labels_for_unavailable_models: bool = False


def policy_to_json(policy: VersionPolicy) -> dict[str, object]:
    if isinstance(policy, All):
        return {"all": {}}
    if isinstance(policy, Specific):
        return {"specific": {"versions": sorted(policy.versions)}}
    assert isinstance(policy, Latest)
    return {"latest": {"num_versions": policy.num_versions}}


class Reconciler:
    def __init__(
        self,
        store: CatalogStore,
        converter: SavedModelConverter,
        repository: TritonRepositoryClient,
        router: Router,
        settings: ReconcilerSettings | None = None,
    ) -> None:
        self.store = store
        self.converter = converter
        self.repository = repository
        self.router = router
        self.settings = settings or ReconcilerSettings()
        self._desired: ModelSetConfig = ModelSetConfig(models=())
        self._lock = asyncio.Lock()
        self._generation = 0

    @property
    def desired(self) -> ModelSetConfig:
        return self._desired

    async def set_desired(self, config: ModelSetConfig) -> None:
        """Replace the whole model set (TF Serving's config reload semantics) and reconcile."""
        self._desired = config
        await self.reconcile()

    # -- one pass ------------------------------------------------------------------------------
    async def reconcile(self) -> None:
        async with self._lock:
            index = await self.repository.index()
            desired = self._desired.by_name()
            results = await asyncio.gather(
                *(self._reconcile_model(spec, index) for spec in desired.values()),
                self._retire_undesired(set(desired), index),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, BaseException):
                    log.error("reconcile failed: %s", result, exc_info=result)
            await self.publish()

    async def _reconcile_model(self, spec: ModelSpecConfig, index: list[IndexEntry]) -> None:
        await asyncio.to_thread(self._register_model, spec)
        try:
            discovered = await asyncio.to_thread(discover_versions, spec.base_path)
        except SourceError as exc:
            log.warning("%s", exc)
            discovered = {}
        if not discovered:
            log.warning("%s", no_versions_message(spec.name, spec.base_path))
        wanted = select_versions(spec.policy, discovered)
        for version in sorted(wanted):
            await self._ensure_converted(spec.name, version, discovered[version])
        await self._converge(spec.name, wanted, index)
        await asyncio.to_thread(self._apply_labels, spec)

    def _register_model(self, spec: ModelSpecConfig) -> None:
        policy = policy_to_json(spec.policy)
        model, _ = self.store.get_or_create_model(
            spec.name, str(spec.base_path), policy, actor=ACTOR
        )
        if model.base_path != str(spec.base_path) or model.policy.to_json() != policy:
            self.store.update_model(
                spec.name, base_path=str(spec.base_path), policy=policy, actor=ACTOR
            )

    async def _ensure_converted(self, model: str, version: int, source: Path) -> None:
        known = await asyncio.to_thread(self._find_version, model, version)
        if known is not None and known.state == VersionState.FAILED:
            return  # retried only when its files change (a new directory = a new version)
        if known is not None and self._repository_has(model, known):
            return
        try:
            digest = await asyncio.to_thread(checksum, source)
            converted = await asyncio.to_thread(
                self.converter.convert, model, version, source, self._signature_filter
            )
            signatures = signatures_to_json(converted.signatures)
            reason = ""
        except (SavedModelError, UnsupportedSignature, OSError) as exc:
            digest, signatures, reason = "", {}, str(exc)
            log.error("model %s version %s cannot be converted: %s", model, version, reason)
        if known is None:
            await asyncio.to_thread(
                self.store.create_model_version,
                model,
                version,
                str(source),
                digest,
                signatures,
                ACTOR,
            )
        if reason:
            await self._set_state(model, version, VersionState.FAILED, reason)

    def _signature_filter(self, name: str) -> bool:
        return self.settings.all_signatures or name == DEFAULT_SIGNATURE

    def _find_version(self, model: str, version: int) -> ModelVersion | None:
        try:
            return self.store.get_model_version(model, version)
        except CatalogError:
            return None

    def _repository_has(self, model: str, version: ModelVersion) -> bool:
        return all(
            (self.converter.repository / name / str(version.version) / "model.py").exists()
            for name in self._triton_models(model, version).values()
        )

    def _triton_models(self, model: str, version: ModelVersion) -> dict[str, str]:
        return {
            sig: triton_model_name(model, sig)
            for sig in version.signatures
            if self._signature_filter(sig)
        }

    # -- converge Triton on the wanted versions ------------------------------------------------
    async def _converge(self, model: str, wanted: Iterable[int], index: list[IndexEntry]) -> None:
        versions = {
            v.version: v for v in await asyncio.to_thread(self.store.list_model_versions, model)
        }
        wanted = {v for v in wanted if v in versions and versions[v].state != VersionState.FAILED}
        old = {
            v
            for v, mv in versions.items()
            if v not in wanted and mv.state in (VersionState.AVAILABLE, VersionState.LOADING)
        }
        # Step 1: load the wanted versions beside whatever still serves.
        await self._push(model, versions, wanted | old, index, new=wanted)
        versions = {
            v.version: v for v in await asyncio.to_thread(self.store.list_model_versions, model)
        }
        serving = {v for v in wanted if versions[v].state == VersionState.AVAILABLE}
        # Step 2: retire the old ones, but never leave the model with nothing to serve.
        if old and (serving or not wanted):
            for v in old:
                await self._set_state(model, v, VersionState.UNLOADING)
            await self._push(model, versions, serving, await self.repository.index(), new=set())
            for v in old:
                await self._set_state(model, v, VersionState.END)

    async def _versions(self, model: str) -> dict[int, ModelVersion]:
        listed = await asyncio.to_thread(self.store.list_model_versions, model)
        return {v.version: v for v in listed}

    async def _push(
        self,
        model: str,
        versions: dict[int, ModelVersion],
        target: set[int],
        index: list[IndexEntry],
        new: set[int],
    ) -> None:
        """Make every Triton model of ``model`` serve exactly ``target`` versions."""
        by_triton: dict[str, tuple[set[int], SignatureSpec | None]] = {}
        for v in sorted(versions):
            for sig, name in self._triton_models(model, versions[v]).items():
                wanted, _ = by_triton.setdefault(name, (set(), None))
                if v in target:
                    wanted.add(v)
                    spec = signatures_from_json(versions[v].signatures)[sig]
                    by_triton[name] = (wanted, spec)  # the newest version's signature wins
        failures: dict[int, str] = {}
        for name, (wanted, spec) in by_triton.items():
            ready = {e.version for e in index if e.name == name and e.state == "READY"}
            if ready == wanted:
                continue
            for v in wanted - ready:
                await self._set_state(model, v, VersionState.LOADING)
            failures.update(await self._load(name, model, spec, wanted, ready))
        for v in sorted(new):
            state = versions[v].state
            if v in failures:
                await self._set_state(model, v, VersionState.FAILED, failures[v])
            elif state != VersionState.AVAILABLE and v in target:
                await self._set_state(model, v, VersionState.AVAILABLE)

    async def _load(
        self,
        name: str,
        model: str,
        spec: SignatureSpec | None,
        wanted: set[int],
        ready: set[int],
    ) -> dict[int, str]:
        """Load ``name`` serving ``wanted``; on failure restore ``ready``. Returns the failures."""
        if not wanted or spec is None:
            try:
                await self.repository.unload(name)
            except RepositoryError as exc:
                log.warning("unload %s: %s", name, exc)
            return {}
        config = build_model_config(name, model, spec, wanted, self.settings.max_batch_size)
        try:
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
            with_keep = build_model_config(name, model, spec, keep, self.settings.max_batch_size)
            try:
                await self._load_config(with_keep)
            except RepositoryError as exc:
                log.error("restoring %s versions %s failed: %s", name, sorted(keep), exc)
        return failed

    async def _load_config(self, config: mc.ModelConfig) -> None:
        await asyncio.to_thread(self.converter.write_config, config)
        await self.repository.load(config.name, config)

    async def _retire_undesired(self, desired: set[str], index: list[IndexEntry]) -> None:
        """Models no longer listed: unload every Triton model of theirs, versions END."""
        for model in await asyncio.to_thread(self.store.list_models):
            if model.name in desired:
                continue
            versions = await asyncio.to_thread(self.store.list_model_versions, model.name)
            live = [v for v in versions if v.state not in (VersionState.END, VersionState.FAILED)]
            if not live:
                continue
            names = {n for v in versions for n in self._triton_models(model.name, v).values()}
            for v in live:
                await self._set_state(model.name, v.version, VersionState.UNLOADING)
            for name in names:
                if any(e.name == name and e.state == "READY" for e in index):
                    await self.repository.unload(name)
            for v in live:
                await self._set_state(model.name, v.version, VersionState.END)

    def _apply_labels(self, spec: ModelSpecConfig) -> None:
        current = self.store.list_labels(spec.name)
        for label, version in spec.labels.items():
            if current.get(label) == version:
                continue
            try:
                self.store.set_model_version_label(
                    spec.name,
                    label,
                    version,
                    actor=ACTOR,
                    allow_unavailable=self.settings.allow_version_labels_for_unavailable_models,
                )
            except CatalogError as exc:
                log.warning("label %s of %s -> %s: %s", label, spec.name, version, exc)

    async def _set_state(
        self, model: str, version: int, state: VersionState, reason: str = ""
    ) -> None:
        await asyncio.to_thread(
            self.store.set_model_version_state, model, version, state, reason, actor=ACTOR
        )

    # -- routing -------------------------------------------------------------------------------
    async def publish(self) -> RoutingTable:
        table = await asyncio.to_thread(self._build_table)
        self.router.publish(table)
        return table

    def _build_table(self) -> RoutingTable:
        self._generation += 1
        models = {}
        for name in self._desired.names:
            try:
                versions = self.store.list_model_versions(name)
                labels = self.store.list_labels(name)
                traffic = self.store.get_traffic(name)
            except CatalogError:
                continue
            routes = {v.version: self._version_route(name, v) for v in versions}
            models[name] = ModelRoute(name, routes, labels, traffic)
        return RoutingTable(self._generation, models)

    def _version_route(self, model: str, version: ModelVersion) -> VersionRoute:
        signatures = {
            k: v
            for k, v in signatures_from_json(version.signatures).items()
            if self._signature_filter(k)
        }
        batched = {
            k: sig.batched and self.settings.max_batch_size > 0 for k, sig in signatures.items()
        }
        return VersionRoute(
            version=version.version,
            state=version.state.value,
            reason=version.state_reason,
            signatures=signatures,
            triton_models={k: triton_model_name(model, k) for k in signatures},
            batched=batched,
        )
