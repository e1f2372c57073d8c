"""The control plane's parts, and ``tfsgate control-plane``: the role that runs them alone.

:class:`ControlPlane` builds the catalog, Triton (embedded, or the instances of ``--triton_url``),
the converter and the reconciler, whose every routing table goes to the routing feed (and to the
in-process router of ``tfsgate serve``); then the sources' polls, retries, rollouts, Triton
supervision and the admin API. :class:`ControlPlaneServer` runs it only while it leads
(``control_plane/leadership.py``): a standby waits with nothing started, its admin port closed.
A leader that loses its lock exits with status 1 so that its supervisor restarts it as a standby.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from control_plane import leadership
from control_plane import metrics as control_metrics
from control_plane.api import AdminSettings
from control_plane.api.rollout_routes import RolloutParts
from control_plane.catalog import migrate
from control_plane.catalog.store import CatalogStore
from control_plane.converter.exporter import Exporter, ExportOptions
from control_plane.converter.gpu import GpuOptions
from control_plane.converter.triton_config import EngineOptions
from control_plane.converter.writer import SavedModelConverter
from control_plane.quality.feedback import FeedbackService
from control_plane.reconciler import Reconciler, ReconcilerSettings, retry_failed_passes
from control_plane.reconciler.publish import CatalogFeed
from control_plane.rollouts.service import RolloutService
from control_plane.sources.base_path import missing_base_path_message
from control_plane.sources.model_config import ModelConfigError, ModelSetConfig, config_from_proto
from control_plane.sources.polling import every, poll_base_paths, poll_config_file
from control_plane.triton.embedded import EmbeddedTriton, TritonEndpoints
from control_plane.triton.fleet import TritonFleet
from control_plane.triton.repository import Repository, TritonRepositoryClient
from control_plane.triton.supervisor import supervise
from gateway import metrics as gateway_metrics
from tfsgate import lifecycle
from tfsgate.admin_door import AdminServer
from tfsgate.core.routing_table import TablePublisher
from tfsgate.core.shared_metrics import TRITON_PROBE_SECONDS
from tfsgate.core.status import ServingError, invalid_argument
from tfsgate.preflight import check_port_free, engine_options, initial_model_set
from tfsgate.prewarm import embedded_triton
from tfsgate.settings import ServeSettings
from tfsgate.startup import check_flags, read_config_files, report_no_effect

log = logging.getLogger("tfsgate")
PREDICTION_RETENTION = timedelta(days=7)
PRUNE_SECONDS = 3600.0
QUALITY_REFRESH_SECONDS = 30.0  # tfsgate_quality gauges follow feedback this often

TritonRestarted = Callable[[str], Awaitable[None]]


def open_catalog(url: str) -> CatalogStore:
    """A fresh database is created at head (Alembic in a child: it never enters a server); an
    existing one behind head is refused."""
    if migrate.current(url) is None:
        migrate.upgrade_in_child(url)
    migrate.ensure_at_head(url)
    return CatalogStore.from_url(url)


class ConfigReloader:
    """gRPC ``HandleReloadConfigRequest``: replace the whole model set, answer once reconciled."""

    def __init__(self, reconciler: Reconciler) -> None:
        self.reconciler = reconciler

    async def reload_config(self, config: Any) -> None:
        try:
            models = config_from_proto(config, source="ReloadConfigRequest", root_dir=Path.cwd())
        except ModelConfigError as exc:
            raise ServingError(exc.code, str(exc)) from exc
        if not models.specified:
            log.info("Taking no action for empty config.")  # ServerCore::ReloadConfig
            return
        missing = [m for m in models.models if not m.base_path.is_dir()]
        if missing:
            raise invalid_argument(missing_base_path_message(missing[0].name, missing[0].base_path))
        await self.reconciler.set_desired(models)


class ControlPlane:
    """Catalog, Triton, converter, reconciler and the loops around them, in this process."""

    def __init__(
        self,
        settings: ServeSettings,
        engine: EngineOptions,
        export: ExportOptions,
        router: TablePublisher | None = None,
        exporter: Exporter | None = None,
        triton: EmbeddedTriton | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.export = export
        self.router = router
        self.exporter = exporter  # the export child, when started ahead (tfsgate.prewarm)
        self.triton = triton  # the embedded Triton: started ahead (tfsgate.prewarm) or in open()
        self.triton_urls: tuple[str, ...] = settings.triton_urls  # gRPC: repository calls
        # Where gateways send inferences (the routing feed carries them): the embedded Triton's
        # HTTP endpoint, else --triton_http_url or --triton_url.
        self.inference_urls: tuple[str, ...] = settings.triton_inference_urls
        self._store: CatalogStore | None = None
        self._repository: Repository | None = None
        self._instances: list[TritonRepositoryClient] = []
        self._gateway_metrics = False
        self._converter: SavedModelConverter | None = None
        self._reconciler: Reconciler | None = None
        self._admin: AdminServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._on_triton_restart: list[TritonRestarted] = []

    @property
    def store(self) -> CatalogStore:
        assert self._store is not None, "open() first"
        return self._store

    @property
    def repository(self) -> Repository:
        assert self._repository is not None, "open() first"
        return self._repository

    @property
    def reconciler(self) -> Reconciler:
        assert self._reconciler is not None, "open() first"
        return self._reconciler

    async def open(self) -> None:
        """The catalog (migrated when empty), Triton ready, the reconciler built."""
        s = self.settings
        s.home_path.mkdir(parents=True, exist_ok=True)
        self._store = await asyncio.to_thread(open_catalog, s.catalog_url)
        if not self.triton_urls:
            if self.triton is None:
                self.triton = embedded_triton(s)
                self.triton.start()
            await self.triton.wait_ready()
            endpoints = self.triton.endpoints
            assert endpoints is not None  # started
            self.triton_urls = (endpoints.grpc_url,)
            self.inference_urls = (endpoints.http_url,)
        key = s.triton_repository_key
        push = s.repository_path if s.triton_push_model_files else None
        # Metrics name an instance by its URL, the embedded one "embedded" (its ports change
        # when it is restarted).
        self._instances = [
            TritonRepositoryClient(
                url, name=url if s.triton_url else "embedded", key=key, push_from=push
            )
            for url in self.triton_urls
        ]
        if s.triton_url:
            # External Tritons restart on their own (a container's restart policy), empty in
            # explicit model control: the fleet's sync loads the served versions back.
            self._repository = TritonFleet(self._instances)
        else:
            self._repository = self._instances[0]  # the supervisor reloads a restarted one
        self._converter = SavedModelConverter(
            s.repository_path,
            self.export,
            exporter=self.exporter,
            flavor=s.triton_flavor,
            prefer_tflite=s.prefer_tflite_model,
            per_model_batching=s.enable_batching and s.enable_per_model_batching_parameters,
        )
        self._reconciler = Reconciler(
            self.store,
            self._converter,
            self._repository,
            self.router,
            self._reconciler_settings(),
            feed=CatalogFeed(self.store, lambda: self.inference_urls),
        )

    def _reconciler_settings(self) -> ReconcilerSettings:
        s = self.settings
        return ReconcilerSettings(
            max_batch_size=self.engine.batching.max_batch_size,
            allow_version_labels_for_unavailable_models=(
                s.allow_version_labels_for_unavailable_models
            ),
            max_load_retries=s.max_num_load_retries,
            load_retry_interval_seconds=s.load_retry_interval_micros / 1e6,
            engine=self.engine,
            runner=s.runner or None,
            model_settings_file=s.model_settings_file,
            flavor=s.triton_flavor,
            gpu_options=GpuOptions(
                instances=s.gpu_instances,
                precision=s.tensorrt_precision,
                engine_cache=s.tensorrt_engine_cache,
            ),
            warmup=s.enable_model_warmup,
            warmup_iterations=max(s.num_request_iterations_for_warmup, 1),
            per_model_batching=s.enable_per_model_batching_parameters,
        )

    def on_triton_restart(self, callback: TritonRestarted) -> None:
        """Also call ``callback`` with a restarted embedded Triton's new inference URL (HTTP)."""
        self._on_triton_restart.append(callback)

    async def start_services(
        self,
        flush: Callable[[], Awaitable[None]] | None = None,
        gateway_metrics: bool = False,
    ) -> FeedbackService:
        """Rollouts, feedback, the admin API and the background loops; the feedback service is
        returned for the REST front door of ``tfsgate serve`` (``gateway_metrics``: its Triton
        probe also sets the gateway's readiness series)."""
        s = self.settings
        store, reconciler = self.store, self.reconciler
        feedback = FeedbackService(store, flush)
        # The guard and the shadow summary read what every gateway reported to the catalog.
        observations = store.observations
        rollouts = RolloutService(store, reconciler.publish, observations, feedback)
        if s.admin_port:
            parts = RolloutParts(rollouts, feedback, observations)
            self._admin = AdminServer(store, reconciler, AdminSettings.from_serve(s), parts)
            await self._admin.start()
        control_metrics.leading(True)
        self._gateway_metrics = gateway_metrics
        await self._probe_triton()
        self._spawn(every(TRITON_PROBE_SECONDS, self._probe_triton, self._stopping))
        if isinstance(self._repository, TritonFleet):
            self._spawn(self._repository.run_sync(self._stopping))
        stopping = self._stopping
        self._spawn(poll_base_paths(reconciler, s.file_system_poll_wait_seconds, stopping))
        self._spawn(retry_failed_passes(reconciler, stopping))
        self._spawn(rollouts.run(stopping))
        self._spawn(every(PRUNE_SECONDS, self._prune_predictions, stopping))

        async def refresh_quality() -> None:
            served = await asyncio.to_thread(reconciler.served_models)
            await asyncio.to_thread(feedback.refresh, list(served))

        self._spawn(every(QUALITY_REFRESH_SECONDS, refresh_quality, stopping))
        if s.model_config_file:
            seconds = s.model_config_file_poll_wait_seconds
            self._spawn(poll_config_file(s.model_config_file, reconciler, seconds, stopping))
        if self.triton is not None:
            self._spawn(supervise(self.triton, self._triton_restarted, stopping))
        return feedback

    async def _prune_predictions(self) -> None:
        """Recorded predictions and feedback are kept for ``PREDICTION_RETENTION``."""
        before = datetime.now(UTC) - PREDICTION_RETENTION
        await asyncio.to_thread(self.store.rollouts.prune_predictions, before)

    async def _probe_triton(self) -> None:
        """tfsgate_triton_ready in the control plane's metrics (and the gateway's, in serve)."""
        for instance in self._instances:
            ready = await instance.ready()
            control_metrics.triton_ready(instance.name, ready)
            if self._gateway_metrics:
                gateway_metrics.triton_ready(instance.name, ready)

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        self._tasks.append(asyncio.ensure_future(coroutine))

    async def _triton_restarted(self, endpoints: TritonEndpoints) -> None:
        """A restarted Triton listens on new ports and has nothing loaded: repoint the clients
        (the feed carries the new URL to gateways), then let the reconciler load every model."""
        self.triton_urls = (endpoints.grpc_url,)
        self.inference_urls = (endpoints.http_url,)
        # the embedded Triton is the one instance
        await self._instances[0].repoint(endpoints.grpc_url)
        for callback in self._on_triton_restart:
            await callback(endpoints.http_url)
        await self.reconciler.reconcile()

    async def stop(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._admin is not None:
            with contextlib.suppress(Exception):
                await self._admin.stop()
        if self._repository is not None:
            with contextlib.suppress(Exception):
                await self._repository.close()
        if self._converter is not None:
            await asyncio.to_thread(self._converter.close)
        if self.triton is not None:
            await asyncio.to_thread(self.triton.stop)
        if self._store is not None:
            self._store.close()


class ControlPlaneServer:
    """``tfsgate control-plane``: the control plane, run while this process leads."""

    def __init__(self, settings: ServeSettings, exporter: Exporter | None = None) -> None:
        self.settings = settings
        self.exporter = exporter
        self.control: ControlPlane | None = None

    def preflight(self) -> ModelSetConfig:
        s = self.settings
        check_flags(s)
        config = initial_model_set(s)
        read_config_files(s)
        self.engine, self.export = engine_options(s)
        return config

    async def run_until_signalled(self) -> int:
        """0 after SIGTERM/SIGINT; 1 when leadership was lost (stop acting, be restarted)."""
        stop = lifecycle.stop_requested()
        config = self.preflight()
        lock = leadership.leadership_for(self.settings.catalog_url)
        control_metrics.leading(False)
        try:
            if not await leadership.acquire(lock, stop):
                return 0
            await self._start(config)
            watching = asyncio.ensure_future(leadership.watch(lock, stop))
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({watching, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            kept = not watching.done() or watching.result()
            watching.cancel()
            log.info("stopping")
            return 0 if kept else 1
        finally:
            if self.control is not None:
                await self.control.stop()
            lock.release()

    async def _start(self, config: ModelSetConfig) -> None:
        s = self.settings
        check_port_free("127.0.0.1", s.admin_port, "--admin_port")
        self.control = ControlPlane(s, self.engine, self.export, exporter=self.exporter)
        await self.control.open()
        await self.control.reconciler.set_desired(config)
        await self.control.start_services()
        log.info(
            "control plane leads: Triton %s, admin API on port %s",
            ", ".join(self.control.triton_urls),
            s.admin_port,
        )


def serve_control_plane(settings: ServeSettings, exporter: Exporter | None = None) -> int:
    report_no_effect(settings)
    return lifecycle.run(ControlPlaneServer(settings, exporter).run_until_signalled)
