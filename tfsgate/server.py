"""The composition root of ``tfsgate serve``: builds every part, owns start, stop and signals.

Order matters: check ports and inputs first (one-line errors, nothing started), then the catalog,
Triton, the first reconcile (TF Serving answers only once its models are loaded), then the front
doors, then the background loops (polls: ``control_plane/sources/polling.py``; Triton supervision:
``control_plane/triton/supervisor.py``; retries: the reconciler's).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from control_plane import metrics as control_metrics
from control_plane.api import AdminServer, AdminSettings
from control_plane.api.rollout_routes import RolloutParts
from control_plane.catalog import migrate
from control_plane.catalog.errors import CatalogError
from control_plane.catalog.store import CatalogStore
from control_plane.converter.batching import BatchingConfig, BatchingConfigError
from control_plane.converter.exporter import RUNNERS, ExportOptions
from control_plane.converter.gpu import GpuOptions
from control_plane.converter.triton_config import EngineOptions
from control_plane.converter.writer import SavedModelConverter
from control_plane.quality.feedback import FeedbackService
from control_plane.reconciler import Reconciler, ReconcilerSettings, retry_failed_passes
from control_plane.rollouts.service import RolloutService
from control_plane.sources.base_path import (
    SourceError,
    discover_versions,
    missing_base_path_message,
    no_versions_message,
)
from control_plane.sources.model_config import (
    ModelConfigError,
    ModelSetConfig,
    config_from_proto,
    load_model_config,
    single_model_config,
)
from control_plane.sources.polling import every, poll_base_paths, poll_config_file
from control_plane.triton.embedded import EmbeddedTriton, TritonStartError
from control_plane.triton.repository import TritonRepositoryClient
from control_plane.triton.supervisor import supervise
from gateway import metrics as gateway_metrics
from gateway.coalescer import Coalescer
from gateway.dataplane import DataPlane
from gateway.grpc_service import GrpcOptions, GrpcServer
from gateway.observations import ObservationReporter
from gateway.prediction_log import PredictionLogger
from gateway.rest import RestOptions, RestServer
from gateway.routing import Router
from gateway.upstream import TritonInferenceClient
from tfsgate.core.status import Code, ServingError, invalid_argument
from tfsgate.settings import ServeSettings
from tfsgate.startup import (
    StartupError,
    check_flags,
    custom_op_libraries,
    front_door_options,
    read_config_files,
    report_failure,
    report_no_effect,
    tf_session_config,
)

log = logging.getLogger("tfsgate")
PREDICTION_RETENTION = timedelta(days=7)
PRUNE_SECONDS = 3600.0
TRITON_PROBE_SECONDS = 2.0
QUALITY_REFRESH_SECONDS = 30.0  # tfsgate_quality gauges follow feedback this often


def check_port_free(host: str, port: int, flag: str) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise StartupError(
                f"port {port} ({flag}) is already in use: {exc.strerror}", Code.UNAVAILABLE
            ) from None


def initial_model_set(settings: ServeSettings) -> ModelSetConfig:
    """The models named by flags: ``--model_config_file`` or ``--model_name/--model_base_path``."""
    root = Path.cwd()
    try:
        if settings.model_config_file:
            config = load_model_config(settings.model_config_file, root_dir=root)
        else:
            name, base_path = settings.model_name, settings.model_base_path
            config = single_model_config(name, base_path, root_dir=root)
    except ModelConfigError as exc:
        raise StartupError(str(exc), exc.code, exc.parse_error) from None
    # TF Serving waits for versions to appear; tfsgate says at once why nothing would serve.
    for model in config.models:
        if not model.base_path.is_dir():
            message = missing_base_path_message(model.name, model.base_path)
            raise StartupError(message, Code.NOT_FOUND)
        if not discover_versions(model.base_path, tflite=settings.prefer_tflite_model):
            raise StartupError(no_versions_message(model.name, model.base_path), Code.NOT_FOUND)
    return config


def engine_options(s: ServeSettings) -> tuple[EngineOptions, ExportOptions]:
    """The engine's settings from TF Serving's flags and ours (issue 8)."""
    if s.runner and s.runner not in RUNNERS:
        raise StartupError(f"--runner must be one of {', '.join(RUNNERS)}, not {s.runner!r}")
    if s.triton_flavor not in ("cpu", "gpu"):
        raise StartupError(f"--triton_flavor must be cpu or gpu, not {s.triton_flavor!r}")
    if s.triton_flavor == "gpu" and not s.triton_url:
        raise StartupError(
            "--triton_flavor=gpu needs --triton_url: the embedded Triton is CPU-only"
        )
    if s.tensorrt_precision not in ("FP32", "FP16", "INT8"):
        raise StartupError(
            f"--tensorrt_precision must be FP32, FP16 or INT8, not {s.tensorrt_precision!r}"
        )
    try:
        batching = BatchingConfig.from_flags(s.enable_batching, s.batching_parameters_file)
    except BatchingConfigError as exc:
        raise StartupError(str(exc), Code.INVALID_ARGUMENT) from None
    for note in batching.notes:
        log.warning("--batching_parameters_file: %s", note)
    libraries = custom_op_libraries(s.custom_op_libraries)
    # TF Serving: session_parallelism sizes both pools unless they are given one by one.
    engine = EngineOptions(
        custom_op_libraries=libraries,
        tf_session_config=tf_session_config(s),
        tflite_instances=max(s.num_tflite_pools, 0),
        batching=batching,
        onnx_intra_op_threads=s.onnx_intra_op_threads,
        onnx_inter_op_threads=s.onnx_inter_op_threads,
        tf_intra_op_threads=s.tensorflow_intra_op_parallelism or s.tensorflow_session_parallelism,
        tf_inter_op_threads=s.tensorflow_inter_op_parallelism or s.tensorflow_session_parallelism,
    )
    export = ExportOptions(
        tags=tuple(t.strip() for t in s.saved_model_tags.split(",") if t.strip()) or ("serve",),
        atol=s.parity_atol,
        rtol=s.parity_rtol,
        max_batch=batching.max_batch_size,
        custom_op_libraries=libraries,
    )
    return engine, export


def open_catalog(url: str) -> CatalogStore:
    """A fresh database is created at head; an existing one behind head is refused."""
    if migrate.current(url) is None:
        migrate.upgrade(url)
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


class TfsgateServer:
    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.triton: EmbeddedTriton | None = None
        self.store: CatalogStore | None = None
        self.repository: TritonRepositoryClient | None = None
        self.upstream: TritonInferenceClient | None = None
        self.reconciler: Reconciler | None = None
        self.logger: PredictionLogger | None = None
        self.router = Router()
        self._servers: list[GrpcServer | RestServer | AdminServer] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self.grpc_options = GrpcOptions()
        self.rest_options = RestOptions()
        self.converter: SavedModelConverter | None = None

    def preflight(self) -> ModelSetConfig:
        s = self.settings
        check_flags(s)
        config = initial_model_set(s)
        read_config_files(s)
        self.engine, self.export = engine_options(s)
        self.grpc_options, self.rest_options = front_door_options(s)
        check_port_free(s.host, s.port, "--port")
        if s.rest_api_port != s.port:
            check_port_free(s.host, s.rest_api_port, "--rest_api_port")
        check_port_free("127.0.0.1", s.admin_port, "--admin_port")
        return config

    async def start(self) -> None:
        s = self.settings
        config = self.preflight()
        s.home_path.mkdir(parents=True, exist_ok=True)
        self.store = await asyncio.to_thread(open_catalog, s.catalog_url)
        grpc_url = s.triton_url
        if not grpc_url:
            self.triton = EmbeddedTriton(
                s.repository_path, s.home_path, cache_bytes=s.response_cache_bytes
            )
            endpoints = self.triton.start()
            await self.triton.wait_ready()
            grpc_url = endpoints.grpc_url
        # Metrics name the instance by its flag, the embedded one "embedded" (its ports change
        # when it is restarted).
        name = s.triton_url or "embedded"
        self.repository = TritonRepositoryClient(grpc_url, name=name)
        self.upstream = TritonInferenceClient(grpc_url, name=name)
        self.converter = SavedModelConverter(
            s.repository_path,
            self.export,
            flavor=s.triton_flavor,
            prefer_tflite=s.prefer_tflite_model,
            per_model_batching=s.enable_batching and s.enable_per_model_batching_parameters,
        )
        self.reconciler = Reconciler(
            self.store,
            self.converter,
            self.repository,
            self.router,
            ReconcilerSettings(
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
            ),
        )
        await self.reconciler.set_desired(config)
        coalescer = Coalescer(self.upstream, max_rows=self.engine.batching.max_batch_size)
        store = self.store
        # Request logs and predictions recorded for feedback: one writer thread, off the path.
        self.logger = PredictionLogger(s.home_path / "request_logs", store.rollouts)
        self.logger.start()
        logger = self.logger
        dataplane = DataPlane(
            self.router,
            self.upstream,
            coalescer,
            s.enable_signature_method_name_check,
            logger=logger,
        )

        async def flush() -> None:
            await asyncio.to_thread(logger.wait_idle)

        feedback = FeedbackService(store, flush)
        # The guard and the shadow summary read what every gateway reported to the catalog
        # (here the one in-process gateway, about once a second).
        observations = store.observations
        reporter = ObservationReporter(dataplane.stats, dataplane.shadows, observations)
        rollouts = RolloutService(store, self.reconciler.publish, observations, feedback)
        reloader = ConfigReloader(self.reconciler)
        self._servers.append(GrpcServer(dataplane, s, reloader, self.grpc_options))
        if s.rest_api_port and s.rest_api_port == s.port:
            log.error(  # Server::BuildAndStart serves gRPC only
                "server_options.http_port cannot be same as grpc_port. Please use a different port"
                " for HTTP/REST API. Skipped exporting HTTP/REST API."
            )
        elif s.rest_api_port:
            self._servers.append(RestServer(dataplane, s, self.rest_options, feedback))
        if s.admin_port:
            parts = RolloutParts(rollouts, feedback, observations)
            admin = AdminServer(self.store, self.reconciler, AdminSettings.from_serve(s), parts)
            self._servers.append(admin)
        for server in self._servers:
            await server.start()
        control_metrics.leading(True)  # serve has no standby: it always leads
        stopping = self._stopping
        await self._probe_triton()
        self._spawn(every(TRITON_PROBE_SECONDS, self._probe_triton, stopping))
        self._spawn(poll_base_paths(self.reconciler, s.file_system_poll_wait_seconds, stopping))
        self._spawn(retry_failed_passes(self.reconciler, stopping))
        self._spawn(rollouts.run(stopping))
        self._spawn(reporter.run(stopping))
        self._spawn(every(PRUNE_SECONDS, self._prune_predictions, stopping))
        router = self.router

        async def refresh_quality() -> None:
            await asyncio.to_thread(feedback.refresh, list(router.table.models))

        self._spawn(every(QUALITY_REFRESH_SECONDS, refresh_quality, stopping))
        if s.model_config_file:
            seconds = s.model_config_file_poll_wait_seconds
            self._spawn(poll_config_file(s.model_config_file, self.reconciler, seconds, stopping))
        if self.triton is not None:
            self._spawn(supervise(self.triton, self._on_triton_restart, stopping))
        log.info("serving gRPC on %s:%s, REST on %s:%s", s.host, s.port, s.host, s.rest_api_port)

    async def _prune_predictions(self) -> None:
        """Recorded predictions and feedback are kept for ``PREDICTION_RETENTION``."""
        assert self.store is not None
        before = datetime.now(UTC) - PREDICTION_RETENTION
        await asyncio.to_thread(self.store.rollouts.prune_predictions, before)

    async def _probe_triton(self) -> None:
        """tfsgate_triton_ready, for both roles' metrics (gateway and control plane)."""
        assert self.repository is not None
        ready = await self.repository.ready()
        gateway_metrics.triton_ready(self.repository.name, ready)
        control_metrics.triton_ready(self.repository.name, ready)

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        self._tasks.append(asyncio.ensure_future(coroutine))

    async def _on_triton_restart(self, grpc_url: str) -> None:
        """A restarted Triton listens on new ports and has nothing loaded: repoint both clients,
        then let the reconciler load every model again."""
        assert self.repository is not None and self.upstream is not None
        assert self.reconciler is not None
        await self.repository.repoint(grpc_url)
        await self.upstream.repoint(grpc_url)
        await self.reconciler.reconcile()

    async def stop(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for server in reversed(self._servers):
            with contextlib.suppress(Exception):
                await server.stop()
        for client in (self.upstream, self.repository):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.close()
        if self.converter is not None:
            await asyncio.to_thread(self.converter.close)
        if self.triton is not None:
            await asyncio.to_thread(self.triton.stop)
        if self.logger is not None:
            await asyncio.to_thread(self.logger.stop)
        if self.store is not None:
            self.store.close()

    async def run_until_signalled(self) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await self.start()
            await stop.wait()
            log.info("stopping")
        finally:
            await self.stop()


def serve(settings: ServeSettings) -> int:
    """Run until SIGTERM/SIGINT; a start-up failure is TF Serving's "Failed to start server"
    line and exit status 255."""
    report_no_effect(settings)
    server = TfsgateServer(settings)
    try:
        asyncio.run(server.run_until_signalled())
    except StartupError as exc:
        return report_failure(exc)
    except CatalogError as exc:
        return report_failure(StartupError(exc.message, exc.code))
    except (SourceError, TritonStartError) as exc:
        return report_failure(StartupError(str(exc), Code.FAILED_PRECONDITION))
    return 0
