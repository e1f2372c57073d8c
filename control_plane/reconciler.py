"""Drive Triton until it serves what the catalog and TF-Serving's sources ask for.

One pass per trigger (base-path poll, config change, admin action, Triton restart). A pass is
idempotent: it compares the desired versions of every model with Triton's repository index and
loads or unloads only the difference. It preserves availability like TF Serving: a new version is
loaded and answering before an old one is retired, and a version that fails keeps the old one
serving. One model's failure never blocks another's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tritonclient.grpc import model_config_pb2 as mc

from control_plane.catalog.entities import Model, ModelVersion, VersionPin, VersionState
from control_plane.catalog.errors import CatalogError
from control_plane.catalog.store import CatalogStore
from control_plane.converter import gpu, warmup
from control_plane.converter.savedmodel import SavedModelError, checksum
from control_plane.converter.triton_config import (
    EngineOptions,
    UnsupportedSignature,
    build_model_config,
)
from control_plane.converter.writer import ConversionRefused, SavedModelConverter, read_runner
from control_plane.load_retries import LoadRetries
from control_plane.sources.base_path import SourceError, discover_versions, no_versions_message
from control_plane.sources.model_config import ModelSetConfig, ModelSpecConfig
from control_plane.triton.repository import (
    IndexEntry,
    ModelStatistics,
    RepositoryError,
    TritonRepositoryClient,
)
from tfsgate.core.defaults import DEFAULT_MAX_BATCH_SIZE
from tfsgate.core.naming import triton_model_name
from tfsgate.core.routing_table import (
    ModelRoute,
    RoutingTable,
    ShadowRoute,
    TablePublisher,
    VersionRoute,
)
from tfsgate.core.signatures import (
    SignatureSpec,
    signatures_from_json,
    signatures_to_json,
)
from tfsgate.core.status import Code
from tfsgate.core.version_policy import VersionPolicy

log = logging.getLogger(__name__)
ACTOR = "reconciler"
TERMINAL = {VersionState.AVAILABLE, VersionState.FAILED}


@dataclass(frozen=True)
class ReconcilerSettings:
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    allow_version_labels_for_unavailable_models: bool = False
    # How long requests routed to a retiring version get to reach Triton before it is unloaded.
    drain_seconds: float = 0.5
    # TF Serving's --max_num_load_retries / --load_retry_interval_micros (its defaults are 5 and
    # 60 s; the composition root passes the flags). 0: a failed load is FAILED at once.
    max_load_retries: int = 0
    load_retry_interval_seconds: float = 60.0
    # Threads, batching and instances every signature's Triton config carries.
    engine: EngineOptions = field(default_factory=EngineOptions)
    # ``--runner`` of the command line: the runner setting of the models named by flags or the
    # config file (None keeps what the catalog says, e.g. set through the admin API).
    runner: str | None = None
    # "gpu": an external GPU Triton gets onnxruntime_onnx models and ensembles (gpu.py).
    flavor: str = "cpu"
    gpu_options: gpu.GpuOptions = field(default_factory=lambda: gpu.GpuOptions())
    # Our per-model settings for models of the config file (see ModelSettingsFile).
    model_settings_file: str = ""
    # --enable_model_warmup and --num_request_iterations_for_warmup (0 = once, as TF Serving).
    warmup: bool = True
    warmup_iterations: int = 1


class ModelSettingsFile:
    """``--model_settings_file``: tfsgate's per-model settings that ModelServerConfig cannot say,
    beside the config file: ``{"models": {"<name>": {"runner": "auto|tensorflow|onnxruntime",
    "response_cache": true}}}``. Re-read when it changes; a broken file is logged and ignored."""

    def __init__(self, path: str) -> None:
        self.path = Path(path) if path else None
        self._stamp: tuple[int, int] | None = None
        self._models: dict[str, dict[str, Any]] = {}

    def get(self, model: str) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:
            info = self.path.stat()
            stamp = (info.st_mtime_ns, info.st_size)
            if stamp != self._stamp:
                self._stamp = stamp
                self._models = self._parse(json.loads(self.path.read_text()))
        except (OSError, ValueError) as exc:
            log.warning("--model_settings_file %s ignored: %s", self.path, exc)
            self._models = {}
        return self._models.get(model, {})

    @staticmethod
    def _parse(data: Any) -> dict[str, dict[str, Any]]:
        models = data.get("models") if isinstance(data, dict) else None
        if not isinstance(models, dict):
            raise ValueError('expected {"models": {name: {...}}}')
        parsed = {}
        for name, entry in models.items():
            if not isinstance(entry, dict) or set(entry) - {"runner", "response_cache"}:
                raise ValueError(f"model {name!r}: only runner and response_cache are settings")
            if "runner" in entry and entry["runner"] not in ("auto", "tensorflow", "onnxruntime"):
                raise ValueError(f"model {name!r}: runner {entry['runner']!r}")
            if "response_cache" in entry and not isinstance(entry["response_cache"], bool):
                raise ValueError(f"model {name!r}: response_cache must be true or false")
            parsed[name] = dict(entry)
        return parsed


def admin_spec(model: Model) -> ModelSpecConfig:
    """The desired-state entry of a model registered through the admin API."""
    return ModelSpecConfig(
        name=model.name,
        base_path=Path(model.base_path),
        platform=model.platform,
        policy=model.policy,
    )


def wanted_versions(
    policy: VersionPolicy, discovered: Iterable[int], pins: Mapping[int, VersionPin]
) -> frozenset[int]:
    """The policy's choice among versions not pinned UNLOAD, plus those pinned LOAD.

    UNLOAD pins are removed before selection so "latest" falls back to the next version
    instead of leaving the model with nothing to serve.
    """
    on_disk = set(discovered)
    unloaded = {v for v, pin in pins.items() if pin is VersionPin.UNLOAD}
    loaded = {v for v, pin in pins.items() if pin is VersionPin.LOAD}
    return policy.select(on_disk - unloaded) | (loaded & on_disk)


class Reconciler:
    def __init__(
        self,
        store: CatalogStore,
        converter: SavedModelConverter,
        repository: TritonRepositoryClient,
        router: TablePublisher,
        settings: ReconcilerSettings | None = None,
    ) -> None:
        self.store = store
        self.converter = converter
        self.repository = repository
        self.router = router
        self.settings = settings or ReconcilerSettings()
        self.retries = LoadRetries(
            self.settings.max_load_retries, self.settings.load_retry_interval_seconds
        )
        self._desired: ModelSetConfig = ModelSetConfig(models=())
        self.needs_retry = False
        # Per model, the inputs of its last completed pass (see _reconcile_model).
        self._settled: dict[str, tuple[Any, ...]] = {}
        self._response_cache: dict[str, bool] = {}  # as last pushed to Triton, per model
        self._model_settings = ModelSettingsFile(self.settings.model_settings_file)
        self._served: set[str] = set()
        self._lock = asyncio.Lock()
        self._generation = 0
        self._publish_lock = asyncio.Lock()
        self._routes: dict[tuple[Any, ...], VersionRoute] = {}
        self._routes_used: dict[tuple[Any, ...], VersionRoute] = {}

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
        """Config models plus admin-registered ones; the config wins a name both define."""
        served = {m.name: admin_spec(m) for m in self.store.list_models() if m.admin_registered}
        served.update(self._desired.by_name())
        return served

    # -- one pass ------------------------------------------------------------------------------
    async def reconcile(self) -> None:
        async with self._lock:
            # Stays True when this pass raises or any model fails: retry_failed_passes retries.
            self.needs_retry = True
            index = await self.repository.index()
            desired = await asyncio.to_thread(self.served_models)
            results = await asyncio.gather(
                *(self._reconcile_model(spec, index) for spec in desired.values()),
                self._retire_undesired(set(desired), index),
                return_exceptions=True,
            )
            failed = [r for r in results if isinstance(r, BaseException)]
            for result in failed:
                log.error("reconcile failed: %s", result, exc_info=result)
            if failed or any(r is True for r in results) or self._served != set(desired):
                await self.publish()
            self._served = set(desired)
            # A version waiting for its next load attempt needs another pass too.
            self.needs_retry = bool(failed) or self.retries.pending()

    async def _reconcile_model(self, spec: ModelSpecConfig, index: list[IndexEntry]) -> bool:
        """One model's pass; False when its inputs are those of its last completed pass.

        Base paths are polled every second: a pass whose config entry, version directories, pins
        and Triton index are unchanged would only repeat catalog reads (10-15 ms of CPU per model,
        measured), so it is skipped. A pass that changes something changes the index, so the
        next pass runs once more and then settles.
        """
        registered = await asyncio.to_thread(self._register_model, spec)
        try:
            discovered = await asyncio.to_thread(discover_versions, spec.base_path)
        except SourceError as exc:
            log.warning("%s", exc)
            discovered = {}
        pins = await asyncio.to_thread(self._pins, spec.name)
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
        wanted = wanted_versions(spec.policy, discovered, pins)
        reconverted: set[int] = set()
        if self._response_cache.get(spec.name, registered.response_cache) != (
            registered.response_cache
        ):
            reconverted |= set(wanted)  # the same files under another config
        for version in sorted(wanted):
            runner = registered.runner.value
            if await self._ensure_converted(spec.name, version, discovered[version], runner):
                reconverted.add(version)
        await self._converge(spec.name, wanted, index, reconverted)
        await asyncio.to_thread(self._apply_labels, spec)
        self._settled[spec.name] = inputs
        self._response_cache[spec.name] = registered.response_cache
        return True

    def _register_model(self, spec: ModelSpecConfig) -> Model:
        policy = spec.policy.to_json()
        model, _ = self.store.get_or_create_model(
            spec.name, str(spec.base_path), policy, actor=ACTOR
        )
        runner, cache = None, None
        if not model.admin_registered:
            own = self._model_settings.get(spec.name)
            runner = own.get("runner", self.settings.runner)
            cache = own.get("response_cache")
        if (
            model.base_path != str(spec.base_path)
            or model.policy.to_json() != policy
            or (runner is not None and model.runner.value != runner)
            or (cache is not None and model.response_cache != cache)
        ):
            model = self.store.update_model(
                spec.name,
                base_path=str(spec.base_path),
                policy=policy,
                actor=ACTOR,
                runner=runner,
                response_cache=cache,
            )
        return model

    def _pins(self, model: str) -> dict[int, VersionPin]:
        return {v.version: v.pin for v in self.store.list_model_versions(model) if v.pin}

    async def _ensure_converted(self, model: str, version: int, source: Path, runner: str) -> bool:
        """Convert the version unless its files are in the repository, converted under the
        model's current runner setting; True when a known version was converted again (its Triton
        models must reload even though the same version numbers are READY)."""
        known = await asyncio.to_thread(self._find_version, model, version)
        converted_under = (known.runners.get("setting") if known else None) or None
        if (
            known is not None
            and known.state == VersionState.FAILED
            and converted_under
            in (
                None,
                runner,
            )
        ):
            return False  # retried when its files change (a new directory = a new version)
        if known is not None and converted_under == runner and self._repository_has(model, known):
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
            await self._set_state(model, version, VersionState.FAILED, reason)
            return False
        if known is not None and known.state == VersionState.FAILED:
            await self._set_state(model, version, VersionState.START)
        return known is not None

    async def _convert(
        self, model: str, version: int, source: Path, runner: str
    ) -> tuple[str, dict[str, Any], str, dict[str, Any]]:
        """Write the Triton models of one version: (checksum, signatures JSON, failure reason,
        runner evidence as the catalog keeps it)."""
        evidence: dict[str, Any] = {"setting": runner, "signatures": {}}
        try:
            digest = await asyncio.to_thread(checksum, source)
            converted = await asyncio.to_thread(
                self.converter.convert, model, version, source, runner
            )
        except (SavedModelError, UnsupportedSignature, ConversionRefused, OSError) as exc:
            log.error("model %s version %s cannot be converted: %s", model, version, exc)
            return "", {}, str(exc), evidence
        evidence["signatures"] = {k: v.to_json() for k, v in converted.runners.items()}
        return digest, signatures_to_json(converted.signatures), "", evidence

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
        """Make ``source`` version ``version`` of ``model`` (next number when None), then reconcile.

        A source outside the base path is copied to ``<base_path>/<version>`` first, so base-path
        discovery (and a restart) sees it like any other version. The catalog row, with ``pin``,
        is one transaction and one audit event; a version that fails conversion is recorded
        FAILED with the reason. The caller checks that ``source`` may be read at all.
        """
        async with self._lock:
            registered = await asyncio.to_thread(self.store.get_model, model)
            base_path = Path(registered.base_path)
            number = await asyncio.to_thread(self._next_version, model, base_path, version)
            target = await asyncio.to_thread(place_version, source, base_path, number)
            try:
                digest, signatures, reason, runners = await self._convert(
                    model, number, target, registered.runner.value
                )
                await asyncio.to_thread(
                    self.store.create_model_version,
                    model,
                    number,
                    str(target),
                    digest,
                    signatures,
                    actor,
                    state=VersionState.FAILED if reason else VersionState.START,
                    state_reason=reason,
                    pin=pin,
                    runners=runners,
                )
            except CatalogError:
                if target != source.resolve():
                    await asyncio.to_thread(shutil.rmtree, target, True)
                raise
        await self.reconcile()
        return await asyncio.to_thread(self.store.get_model_version, model, number)

    def _next_version(self, model: str, base_path: Path, version: int | None) -> int:
        known = {v.version for v in self.store.list_model_versions(model)}
        if version is not None and version in known:
            raise CatalogError(
                Code.ALREADY_EXISTS, f"model {model!r} version {version} already exists"
            )
        if version is not None:
            return version
        with contextlib.suppress(SourceError):
            known |= set(discover_versions(base_path))
        return max(known, default=0) + 1

    def _find_version(self, model: str, version: int) -> ModelVersion | None:
        try:
            return self.store.get_model_version(model, version)
        except CatalogError:
            return None

    def _repository_has(self, model: str, version: ModelVersion) -> bool:
        """Converted by this converter: every signature model with its runner and evidence."""
        return all(
            read_runner(self.converter.repository / name / str(version.version)) is not None
            for name in self._triton_models(model, version).values()
        )

    def _triton_models(self, model: str, version: ModelVersion) -> dict[str, str]:
        return {sig: triton_model_name(model, sig) for sig in version.signatures}

    # -- converge Triton on the wanted versions ------------------------------------------------
    async def _converge(
        self,
        model: str,
        wanted: Iterable[int],
        index: list[IndexEntry],
        reload: Iterable[int] = (),
    ) -> None:
        versions = {
            v.version: v for v in await asyncio.to_thread(self.store.list_model_versions, model)
        }
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
        versions = {
            v.version: v for v in await asyncio.to_thread(self.store.list_model_versions, model)
        }
        serving = {v for v in wanted if versions[v].state == VersionState.AVAILABLE}
        # Step 2: retire the old ones, but never leave the model with nothing to serve: when
        # every version the policy asks for FAILED, the old ones keep serving. Only a policy
        # that asks for nothing (no versions on disk) retires them without a successor.
        if old and (serving or not asked):
            for v in old:
                await self._set_state(model, v, VersionState.UNLOADING)
            # Route away from the old versions before Triton drops them, and let requests
            # already routed there finish: unloading first would fail them.
            await self.publish()
            await asyncio.sleep(self.settings.drain_seconds)
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
        reload: set[int] | None = None,
    ) -> None:
        """Make every Triton model of ``model`` serve exactly ``target`` versions; versions in
        ``reload`` (converted again, or a config setting changed) load even when READY."""
        reload = reload or set()
        response_cache = (await asyncio.to_thread(self.store.get_model, model)).response_cache
        by_triton: dict[str, tuple[set[int], SignatureSpec | None]] = {}
        for v in sorted(versions):
            for sig, name in self._triton_models(model, versions[v]).items():
                wanted, _ = by_triton.setdefault(name, (set(), None))
                if v in target:
                    wanted.add(v)
                    newest = signatures_from_json(versions[v].signatures)[sig]
                    by_triton[name] = (wanted, newest)  # the newest version's signature wins
        failures: dict[int, str] = {}
        loading: set[int] = set()
        loads = []
        for name, (wanted, spec) in by_triton.items():
            ready = {
                e.version
                for e in index
                if e.name == name and e.state == "READY" and e.version is not None
            }
            if ready == wanted and not reload & wanted:
                continue
            loading |= (wanted - ready) | (reload & wanted)
            loads.append(self._load(name, model, spec, wanted, ready - reload, response_cache))
        for v in sorted(loading):
            await self._set_state(model, v, VersionState.LOADING)
        # The signatures of a version load side by side (Triton loads models in parallel, and
        # they share one TensorFlow worker), so a version costs about one load, not one per
        # signature.
        for result in await asyncio.gather(*loads):
            failures.update(result)
        # Every version set LOADING above ends AVAILABLE or FAILED, including versions that were
        # AVAILABLE before (``versions`` is read before LOADING): after a Triton restart they
        # are all reloaded, and an old version kept serving is not in ``new``.
        for v in sorted(new | loading):
            if v in failures:
                final = self.retries.failed((model, v), failures[v])
                if final is None:  # LoaderHarness: LOADING until the retries run out
                    reason = self.retries.waiting_reason((model, v), failures[v])
                    log.warning("model %s version %s: %s", model, v, reason)
                    await self._set_state(model, v, VersionState.LOADING, reason)
                else:
                    await self._set_state(model, v, VersionState.FAILED, final)
            elif v in target and (v in loading or versions[v].state != VersionState.AVAILABLE):
                reason = await self._warm_up(model, versions[v]) if v in loading else ""
                if reason:
                    await self._set_state(model, v, VersionState.FAILED, reason)
                else:
                    self.retries.succeeded((model, v))
                    await self._set_state(model, v, VersionState.AVAILABLE)

    async def _warm_up(self, model: str, version: ModelVersion) -> str:
        """Replay the version's warm-up requests through Triton before it is AVAILABLE (TF
        Serving's SavedModel warm-up); returns why it failed, or ""."""
        if not self.settings.warmup:
            return ""
        directory = self.converter.warmup_dir(model, version.version)
        try:
            found = await asyncio.to_thread(warmup.load, directory)
        except (warmup.WarmupError, OSError, ValueError) as exc:
            return f"warm-up: {exc}"
        if found is None:
            return ""
        signatures = signatures_from_json(version.signatures)
        started = time.monotonic()
        for _ in range(max(self.settings.warmup_iterations, 1)):
            for index, request in enumerate(found.requests):
                spec = signatures.get(request.signature)
                if spec is None:
                    return f"warm-up request {index}: no signature {request.signature!r}"
                inputs = self._triton_inputs(spec, request.inputs)
                name = triton_model_name(model, request.signature)
                try:
                    await self.repository.infer(name, version.version, inputs)
                except RepositoryError as exc:
                    return f"warm-up request {index} ({request.signature}) failed: {exc}"
        seconds = time.monotonic() - started
        log.info(
            "model %s version %s: %d warm-up records replayed in %.3fs",
            model,
            version.version,
            found.records,
            seconds,
        )
        await asyncio.to_thread(
            self.store.set_model_version_warmup,
            model,
            version.version,
            found.records,
            seconds,
            ACTOR,
        )
        return ""

    def _triton_inputs(
        self, spec: SignatureSpec, inputs: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """TF tensors as Triton carries them (the gateway's rule: a batched tensor with no
        other dimension, or a scalar of an unbatched one, travels with a trailing 1)."""
        batched = spec.batched and self.settings.max_batch_size > 0
        out = {}
        for key, value in inputs.items():
            tensor = spec.inputs.get(key)
            if tensor is not None and tensor.travels_with_unit_dim(batched):
                value = value.reshape(-1, 1) if batched else value.reshape(1)
            out[key] = value
        return out

    async def _load(
        self,
        name: str,
        model: str,
        spec: SignatureSpec | None,
        wanted: set[int],
        ready: set[int],
        response_cache: bool = False,
    ) -> dict[int, str]:
        """Load ``name`` serving ``wanted``; on failure restore ``ready``. Returns the failures."""
        if not wanted or spec is None:
            try:
                await self.repository.unload(name)
            except RepositoryError as exc:
                log.warning("unload %s: %s", name, exc)
            if self.settings.flavor == "gpu":  # an ensemble's composing models
                for step in (name + gpu.PARSE_SUFFIX, name + gpu.ONNX_SUFFIX):
                    with contextlib.suppress(RepositoryError):
                        await self.repository.unload(step)
            return {}
        configs = self._configs(name, model, spec, wanted, response_cache)
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
            with_keep = self._configs(name, model, spec, keep, response_cache)
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
        spec: SignatureSpec,
        versions: set[int],
        response_cache: bool,
    ) -> list[mc.ModelConfig]:
        """The Triton config(s) serving ``versions`` of one signature, in load order: the python
        backend (both runners), or on a GPU Triton the onnxruntime backend or an ensemble when
        every version is ONNX Runtime's (see gpu.py)."""
        python = build_model_config(
            name,
            model,
            spec,
            versions,
            self.settings.max_batch_size,
            engine=self.settings.engine,
            response_cache=response_cache,
        )
        if self.settings.flavor != "gpu" or not versions:
            return [python]
        runners = [read_runner(self.converter.repository / name / str(v)) for v in versions]
        if any(r is None or r.runner != "onnxruntime" for r in runners):
            return [python]
        repository = str(self.converter.repository)
        engine, options = self.settings.engine, self.settings.gpu_options
        if all(r is not None and not r.parse for r in runners):
            if not gpu.can_run_on_gpu(spec, python.max_batch_size > 0):
                return [python]
            return [
                gpu.onnx_config(
                    name, model, spec, versions, engine, options, repository, response_cache
                )
            ]
        first = runners[0]
        if len(versions) == 1 and first is not None and first.parse:
            (version,) = versions
            return gpu.ensemble_configs(
                name,
                model,
                spec,
                version,
                first.parse,
                first.onnx_inputs,
                engine,
                options,
                repository,
                response_cache,
            )
        return [python]

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
            await self.publish()  # requests get NOT_FOUND from the table, not Triton's errors
            await asyncio.sleep(self.settings.drain_seconds)
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

    async def statistics(self, model: str) -> dict[int, dict[str, ModelStatistics]]:
        """Triton's counters per version and signature of a model (admin API)."""
        versions = await asyncio.to_thread(self.store.list_model_versions, model)
        names = {n: s for v in versions for s, n in self._triton_models(model, v).items()}
        found: dict[int, dict[str, ModelStatistics]] = {}
        for name, signature in sorted(names.items()):
            try:
                per_version = await self.repository.statistics(name)
            except RepositoryError:
                continue  # not loaded
            for version, stats in per_version.items():
                found.setdefault(version, {})[signature] = stats
        return found

    # -- routing -------------------------------------------------------------------------------
    async def publish(self) -> RoutingTable:
        # One at a time: a table built from an older catalog read never replaces a newer one
        # (model passes publish concurrently, mid-pass, before retiring versions).
        async with self._publish_lock:
            self._generation += 1
            table = await asyncio.to_thread(self._build_table, self._generation)
            self.router.publish(table)
            return table

    def _build_table(self, generation: int) -> RoutingTable:
        try:
            return self._build_models(generation)
        finally:
            # Keep only the routes this table used: the cache never outgrows the catalog.
            self._routes, self._routes_used = self._routes_used, {}

    def _build_models(self, generation: int) -> RoutingTable:
        models = {}
        rollouts = self.store.rollouts
        guarded = rollouts.guarded_models()
        for name, spec in self.served_models().items():
            try:
                versions = self.store.list_model_versions(name)
                labels = self.store.list_labels(name)
                traffic = rollouts.effective_traffic(name)
                shadow = rollouts.get_shadow(name)
            except CatalogError:
                continue
            routes = {v.version: self._version_route(name, v) for v in versions}
            models[name] = ModelRoute(
                name,
                routes,
                labels,
                traffic,
                shadow=ShadowRoute(shadow.version, shadow.percent, shadow.tolerance)
                if shadow is not None
                else None,
                logging=spec.logging,
                guarded=name in guarded,
            )
        return RoutingTable(generation, models)

    def _version_route(self, model: str, version: ModelVersion) -> VersionRoute:
        # Publishing after a promote or a weight change rebuilds every route; parsing each
        # version's signatures again was most of that CPU, taken from the requests being served.
        key = (model, version.version, version.updated_at, version.state, version.state_reason)
        cached = self._routes.get(key) or self._new_version_route(model, version)
        self._routes_used[key] = cached
        return cached

    def _new_version_route(self, model: str, version: ModelVersion) -> VersionRoute:
        signatures = signatures_from_json(version.signatures)
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


def place_version(source: Path, base_path: Path, version: int) -> Path:
    """``<base_path>/<version>`` holding ``source``'s files; copies unless it is that directory.

    The copy goes to a hidden sibling first and is renamed into place, so a concurrent
    base-path scan never sees half a SavedModel (hidden names are not version numbers).
    """
    source, target = source.resolve(), (base_path / str(version)).resolve()
    if source == target:
        return target
    if target.exists():
        raise CatalogError(Code.ALREADY_EXISTS, f"{target} already exists; choose another version")
    try:
        staging = Path(tempfile.mkdtemp(dir=base_path, prefix=f".import-{version}-"))
        shutil.copytree(source, staging / "v")
        (staging / "v").rename(target)
        shutil.rmtree(staging, ignore_errors=True)
    except OSError as exc:
        raise CatalogError(
            Code.FAILED_PRECONDITION, f"cannot copy {source} to {target}: {exc}"
        ) from exc
    return target


class Retryable(Protocol):
    needs_retry: bool

    async def reconcile(self) -> None: ...


async def retry_failed_passes(
    reconciler: Retryable,
    stopping: asyncio.Event,
    min_delay: float = 0.5,
    max_delay: float = 30.0,
) -> None:
    """Retry a failed pass (Triton or the database unreachable, a model's pass raising) with
    exponential backoff, whatever the poll settings: with ``--file_system_poll_wait_seconds=0``
    nothing else would ever run the pass again."""
    delay = min_delay
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), delay if reconciler.needs_retry else min_delay)
            return
        if not reconciler.needs_retry:
            delay = min_delay
            continue
        try:
            await reconciler.reconcile()
        except Exception:  # noqa: BLE001 - logged; the loop backs off and tries again
            log.exception("reconcile retry failed; next in %.1f s", min(delay * 2, max_delay))
        delay = min_delay if not reconciler.needs_retry else min(delay * 2, max_delay)
