"""``tfsgate serve``: the all-in-one server, control plane and front doors in one process.

Order matters: check ports and inputs first (one-line errors, nothing started), then the catalog,
Triton, the first reconcile (TF Serving answers only once its models are loaded), then the loops
and the admin API (``tfsgate/control_plane_server.py``), then the front doors
(``tfsgate/front_doors.py``). Every routing table also goes to the routing feed, so gateways in
other processes (``tfsgate gateway``) can follow this server's catalog. With ``--gateway_workers``
N > 1 the front doors on the flags' ports are N such gateways this server starts and keeps
(``tfsgate/serve_workers.py``); its own listen on a private socket for their config reloads.
"""

from __future__ import annotations

import asyncio

from control_plane.converter.exporter import Exporter
from control_plane.sources.model_config import ModelSetConfig
from control_plane.triton.embedded import EmbeddedTriton
from gateway.grpc_service import GrpcOptions
from gateway.routing import Router
from gateway.upstream import TritonInferenceClient
from tfsgate import lifecycle
from tfsgate.control_plane_server import ConfigReloader, ControlPlane
from tfsgate.front_doors import FrontDoors
from tfsgate.preflight import (
    check_front_door_ports,
    check_port_free,
    engine_options,
    initial_model_set,
)
from tfsgate.serve_workers import GatewayWorkers, check_workers
from tfsgate.settings import ServeSettings
from tfsgate.startup import check_flags, front_door_options, read_config_files, report_no_effect


class TfsgateServer:
    def __init__(
        self,
        settings: ServeSettings,
        exporter: Exporter | None = None,
        triton: EmbeddedTriton | None = None,
    ) -> None:
        self.settings = settings
        self.exporter = exporter  # already started by tfsgate.prewarm, if any
        self.triton = triton  # likewise: the control plane takes it over
        self.router = Router()
        self.control: ControlPlane | None = None
        self.upstream: TritonInferenceClient | None = None
        self.doors: FrontDoors | None = None
        self.workers: GatewayWorkers | None = None

    def preflight(self) -> ModelSetConfig:
        s = self.settings
        check_flags(s)
        check_workers(s)
        config = initial_model_set(s)
        read_config_files(s)
        self.engine, self.export = engine_options(s)
        self.grpc_options, self.rest_options = front_door_options(s)
        check_front_door_ports(s)
        check_port_free("127.0.0.1", s.admin_port, "--admin_port")
        return config

    async def start(self) -> None:
        s = self.settings
        config = self.preflight()
        self.control = control = ControlPlane(
            s, self.engine, self.export, self.router, self.exporter, self.triton
        )
        await control.open()
        name = control.repository.name if len(control.inference_urls) == 1 else ""
        self.upstream = upstream = TritonInferenceClient(control.inference_urls, name=name)
        control.on_triton_restart(upstream.repoint)
        await control.reconciler.set_desired(config)
        doors_settings, grpc_options = s, self.grpc_options
        if s.gateway_workers > 1:
            self.workers = GatewayWorkers(s)
            doors_settings, grpc_options = self.workers.door_settings(), GrpcOptions()
        self.doors = doors = FrontDoors(
            doors_settings,
            self.router,
            upstream,
            self.engine.batching.max_batch_size,
            grpc_options,
            self.rest_options,
            control.store.rollouts,
            control.store.observations,
        )
        feedback = await control.start_services(doors.flush, gateway_metrics=True)
        await doors.start(ConfigReloader(control.reconciler), feedback)
        if self.workers is not None:
            await self.workers.start()

    async def stop(self) -> None:
        if self.workers is not None:
            await self.workers.stop()
        if self.doors is not None:
            await self.doors.stop()
        if self.upstream is not None:
            await self.upstream.close()
        if self.control is not None:
            await self.control.stop()  # with Triton
        elif self.triton is not None:  # started ahead, then the checks failed
            await asyncio.to_thread(self.triton.stop)

    async def run_until_signalled(self) -> int:
        return await lifecycle.until_signalled(self.start, self.stop)


def serve(
    settings: ServeSettings,
    exporter: Exporter | None = None,
    triton: EmbeddedTriton | None = None,
) -> int:
    """Run until SIGTERM/SIGINT; a start-up failure is TF Serving's "Failed to start server"
    line and exit status 255. ``exporter`` and ``triton``: started ahead (tfsgate.prewarm)."""
    report_no_effect(settings)
    return lifecycle.run(TfsgateServer(settings, exporter, triton).run_until_signalled)
