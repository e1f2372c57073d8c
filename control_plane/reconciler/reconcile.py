"""One reconcile pass: desired state -> converted versions -> Triton -> routing table.

One pass per trigger (base-path poll, config change, admin action, Triton restart). A pass is
idempotent: it compares the desired versions of every model with Triton's repository index and
loads or unloads only the difference (``converge.py``). One model's failure never blocks another's;
a pass that failed is retried (``retry.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from control_plane import metrics
from control_plane.catalog.entities import Model, ModelVersion, VersionPin, VersionState
from control_plane.catalog.errors import CatalogError
from control_plane.catalog.store import CatalogStore
from control_plane.converter.savedmodel import SavedModelError, checksum
from control_plane.converter.triton_config import UnsupportedSignature
from control_plane.converter.writer import ConversionRefused, SavedModelConverter
from control_plane.reconciler import desired
from control_plane.reconciler.admin_import import record_import
from control_plane.reconciler.converge import Converger, set_state
from control_plane.reconciler.load_retries import LoadRetries
from control_plane.reconciler.publish import FeedWriter, Publisher
from control_plane.reconciler.settings import ACTOR, ReconcilerSettings
from control_plane.sources.base_path import SourceError, discover_versions, no_versions_message
from control_plane.sources.model_config import ModelSetConfig, ModelSpecConfig
from control_plane.triton.repository import (
    IndexEntry,
    ModelStatistics,
    Repository,
    RepositoryError,
)
from tfsgate.core.routing_table import RoutingTable, TablePublisher
from tfsgate.core.signatures import signatures_to_json

log = logging.getLogger(__name__)
# What decides whether a model's pass has work: its catalog row, version directories and pins.
_Inputs = tuple[Model, dict[int, Path], dict[int, VersionPin]]


class Reconciler:
    def __init__(
        self,
        store: CatalogStore,
        converter: SavedModelConverter,
        repository: Repository,
        router: TablePublisher | None,
        settings: ReconcilerSettings | None = None,
        feed: FeedWriter | None = None,
    ) -> None:
        self.store = store
        self.converter = converter
        self.repository = repository
        self.settings = settings or ReconcilerSettings()
        self.retries = LoadRetries(
            self.settings.max_load_retries, self.settings.load_retry_interval_seconds
        )
        self._desired: ModelSetConfig = ModelSetConfig(models=())
        self.needs_retry = False
        # Per model, the inputs of its last completed pass (see _reconcile_model).
        self._settled: dict[str, tuple[Any, ...]] = {}
        self._response_cache: dict[str, bool] = {}  # as last pushed to Triton, per model
        self._model_settings = desired.ModelSettingsFile(self.settings.model_settings_file)
        self._served: set[str] = set()
        self._served_specs: dict[str, ModelSpecConfig] | None = None  # as the last pass read them
        self._lock = asyncio.Lock()
        self._publisher = Publisher(
            store, router, self._routed_models, self.settings.max_batch_size, feed
        )
        self._converger = Converger(
            store, converter, repository, self.settings, self.retries, self.publish
        )

    @property
    def desired(self) -> ModelSetConfig:
        return self._desired

    async def set_desired(self, config: ModelSetConfig) -> None:
        """Replace the whole model set (TF Serving's config reload semantics) and reconcile.

        Models registered through the admin API are kept: they live in the catalog, not here.
        """
        self._desired = config
        await self.reconcile()

    def config_roots(self) -> list[Path]:
        """Base paths of the models named by flags or ``--model_config_file``."""
        return [spec.base_path for spec in self._desired.models]

    def served_models(self) -> dict[str, ModelSpecConfig]:
        return desired.served_models(self.store.list_models(), self._desired)

    def _routed_models(self) -> dict[str, ModelSpecConfig]:
        """The models a routing table routes, as the last pass read them: every change to that
        set (a config, an admin registration) runs a pass, so the publish after an admin call
        need not read the model list again (a seventh of a promote's CPU in ``tfsgate serve``)."""
        served = self._served_specs
        return served if served is not None else self.served_models()

    async def publish(self, only: str | None = None) -> RoutingTable:
        """A new routing table; ``only``: the one model whose catalog rows changed."""
        return await self._publisher.publish(only)

    # -- one pass ------------------------------------------------------------------------------
    async def reconcile(self) -> None:
        async with self._lock:
            started = time.perf_counter()
            failed_models: set[str] = set()
            try:
                await self._pass(failed_models)
            except Exception:
                failed_models.add("")  # the pass itself (Triton's index, the catalog) failed
                raise
            finally:
                seconds = time.perf_counter() - started
                metrics.reconciled(self.repository.name, seconds, self._served, failed_models)

    async def _pass(self, failed_models: set[str]) -> None:
        # Stays True when this pass raises or any model fails: retry_failed_passes retries.
        self.needs_retry = True
        self._converger.failed_loads.clear()
        index = await self.repository.index()
        served, inputs = await asyncio.to_thread(self._pass_inputs)
        results = await asyncio.gather(
            *(self._reconcile_model(spec, index, inputs[name]) for name, spec in served.items()),
            self._converger.retire_undesired(set(served), index),
            return_exceptions=True,
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        for result in failed:
            log.error("reconcile failed: %s", result, exc_info=result)
        # Failures by model: a model's pass that raised, or a version that failed to load;
        # retiring unlisted models is the pass's own work ("").
        names = [*served, ""]
        failed_models |= {
            n for n, r in zip(names, results, strict=True) if isinstance(r, BaseException)
        }
        failed_models |= self._converger.failed_loads
        if failed or any(r is True for r in results) or self._served != set(served):
            await self.publish()
        self._served = set(served)
        # A version waiting for its next load attempt needs another pass too.
        self.needs_retry = bool(failed) or self.retries.pending()

    async def _reconcile_model(
        self, spec: ModelSpecConfig, index: list[IndexEntry], read: _Inputs | BaseException
    ) -> bool:
        """One model's pass; False when its inputs are those of its last completed pass.

        Base paths are polled every second: a pass whose config entry, version directories, pins
        and Triton index are unchanged would only repeat catalog reads (10-15 ms of CPU per model,
        measured), so it is skipped. A pass that changes something changes the index, so the
        next pass runs once more and then settles.
        """
        if isinstance(read, BaseException):
            raise read  # this model's pass fails; the others go on
        registered, discovered, pins = read
        inputs = (
            repr(spec),
            (registered.runner.value, registered.response_cache),
            tuple(sorted((v, str(path)) for v, path in discovered.items())),
            tuple(sorted(pins.items())),
            tuple((e.name, e.version, e.state) for e in index),
        )
        if self._settled.get(spec.name) == inputs and not self.retries.pending(spec.name):
            return False
        if not discovered:
            log.warning("%s", no_versions_message(spec.name, spec.base_path))
        wanted = desired.wanted_versions(spec.policy, discovered, pins)
        reconverted: set[int] = set()
        if self._response_cache.get(spec.name, registered.response_cache) != (
            registered.response_cache
        ):
            reconverted |= set(wanted)  # the same files under another config
        runner = registered.runner.value
        for version in sorted(wanted):
            if await self._ensure_converted(spec.name, version, discovered[version], runner):
                reconverted.add(version)
        await self._converger.converge(spec.name, wanted, index, reconverted)
        allow = self.settings.allow_version_labels_for_unavailable_models
        await asyncio.to_thread(desired.apply_labels, self.store, spec, allow)
        self._settled[spec.name] = inputs
        self._response_cache[spec.name] = registered.response_cache
        return True

    def _pass_inputs(
        self,
    ) -> tuple[dict[str, ModelSpecConfig], dict[str, _Inputs | BaseException]]:
        """The served models and each one's inputs, read in one thread hop per pass (the
        poll's pass runs every second: a hop per model was a GIL hand-off each, with the
        serving loop of ``tfsgate serve`` waiting on them). A model whose read fails gets its
        exception, raised in its own pass."""
        # Two catalog reads for all models (their rows and every pin), not two per model.
        models = {m.name: m for m in self.store.list_models()}
        served = self._served_specs = desired.served_models(models.values(), self._desired)
        pins = self.store.list_pins()
        inputs: dict[str, _Inputs | BaseException] = {}
        for name, spec in served.items():
            try:
                inputs[name] = self._model_inputs(spec, models.get(name), pins.get(name, {}))
            except Exception as exc:  # noqa: BLE001 - raised again in that model's pass
                inputs[name] = exc
        return served, inputs

    def _model_inputs(
        self, spec: ModelSpecConfig, known: Model | None, pins: dict[int, VersionPin]
    ) -> _Inputs:
        """The catalog's model (``known``: its row as read for the pass, if any), the version
        directories and the pins: what decides whether a model's pass has work (blocking: read
        in ``_pass_inputs``' thread hop)."""
        own = self._model_settings.get(spec.name)
        registered = desired.register_model(self.store, spec, own, self.settings.runner, known)
        try:
            discovered = discover_versions(spec.base_path, tflite=self.converter.prefer_tflite)
        except SourceError as exc:
            log.warning("%s", exc)
            discovered = {}
        return registered, discovered, pins

    async def _ensure_converted(self, model: str, version: int, source: Path, runner: str) -> bool:
        """Convert the version unless its files are in the repository, converted under the
        model's current runner setting; True when a known version was converted again (its Triton
        models must reload even though the same version numbers are READY)."""
        known = await asyncio.to_thread(self._find_version, model, version)
        converted_under = (known.runners.get("setting") if known else None) or None
        libraries = list(self.converter.export.custom_op_libraries)
        if (
            known is not None
            and known.state == VersionState.FAILED
            and converted_under in (None, runner)
            and known.runners.get("custom_op_libraries", []) == libraries
        ):
            # Retried when its files change (a new directory = a new version), or when
            # --custom_op_libraries changes (the op it lacked may be there now).
            return False
        if (
            known is not None
            and converted_under == runner
            and await asyncio.to_thread(
                self.converter.is_converted, model, version, known.signatures, source
            )
        ):
            return False
        digest, signatures, reason, runners = await self._convert(model, version, source, runner)
        if known is None:
            await asyncio.to_thread(
                self.store.create_model_version,
                model,
                version,
                str(source),
                digest,
                signatures,
                ACTOR,
                runners=runners,
            )
        else:
            await asyncio.to_thread(
                self.store.set_model_version_runners, model, version, runners, ACTOR
            )
        if reason:
            await set_state(self.store, model, version, VersionState.FAILED, reason)
            return False
        if known is not None and known.state == VersionState.FAILED:
            await set_state(self.store, model, version, VersionState.START)
        return known is not None

    async def _convert(
        self, model: str, version: int, source: Path, runner: str
    ) -> tuple[str, dict[str, Any], str, dict[str, Any]]:
        """Write the Triton models of one version: (checksum, signatures JSON, failure reason,
        runner evidence as the catalog keeps it)."""
        evidence: dict[str, Any] = {"setting": runner, "signatures": {}}
        if self.converter.export.custom_op_libraries:
            evidence["custom_op_libraries"] = list(self.converter.export.custom_op_libraries)
        started = time.perf_counter()
        try:
            digest = await asyncio.to_thread(checksum, source)
            converted = await asyncio.to_thread(
                self.converter.convert, model, version, source, runner
            )
        except (SavedModelError, UnsupportedSignature, ConversionRefused, OSError) as exc:
            metrics.converted("failed", time.perf_counter() - started)
            log.error("model %s version %s cannot be converted: %s", model, version, exc)
            return "", {}, str(exc), evidence
        used = {r.runner for r in converted.runners.values()}
        ended_on = used.pop() if len(used) == 1 else ("mixed" if used else "none")
        metrics.converted(ended_on, time.perf_counter() - started)
        evidence["signatures"] = {k: v.to_json() for k, v in converted.runners.items()}
        evidence["triton_models"] = dict(converted.triton_models)  # ModelVersion.triton_models
        return digest, signatures_to_json(converted.signatures), "", evidence

    def _find_version(self, model: str, version: int) -> ModelVersion | None:
        try:
            return self.store.get_model_version(model, version)
        except CatalogError:
            return None

    # -- admin: versions from outside the policy -----------------------------------------------
    async def import_version(
        self,
        model: str,
        source: Path,
        actor: str,
        *,
        version: int | None = None,
        pin: VersionPin | None = None,
    ) -> ModelVersion:
        """Make ``source`` version ``version`` of ``model`` (next number when None), then
        reconcile (``admin_import.py``)."""
        async with self._lock:
            number = await record_import(
                self.store, self._convert, model, source, actor, version, pin
            )
        await self.reconcile()
        return await asyncio.to_thread(self.store.get_model_version, model, number)

    async def statistics(self, model: str) -> dict[int, dict[str, ModelStatistics]]:
        """Triton's counters per version and signature of a model (admin API); signatures
        served by one shared Triton model each show that model's counters."""
        versions = await asyncio.to_thread(self.store.list_model_versions, model)
        served = {v.version: v.triton_models() for v in versions}
        found: dict[int, dict[str, ModelStatistics]] = {}
        for name in sorted({n for names in served.values() for n in names.values()}):
            try:
                per_version = await self.repository.statistics(name)
            except RepositoryError:
                continue  # not loaded
            for version, stats in per_version.items():
                for signature, by in served.get(version, {}).items():
                    if by == name:
                        found.setdefault(version, {})[signature] = stats
        return found
