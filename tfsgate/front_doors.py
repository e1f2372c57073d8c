"""TF Serving's front doors over one data plane: gRPC and REST, the coalescer, request logs.

Shared by ``tfsgate serve`` (beside the control plane) and ``tfsgate gateway`` (alone, following
the routing feed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import partial

from gateway.call_depth import CallDepth
from gateway.coalescer import Coalescer
from gateway.dataplane import DataPlane
from gateway.grpc_service import ConfigReloader, GrpcOptions, GrpcServer
from gateway.observations import ObservationReporter, ObservationSink
from gateway.prediction_log import PredictionLogger, PredictionSink
from gateway.rest import FeedbackHandler, RestOptions, RestServer
from gateway.routing import Router
from gateway.upstream import TritonInferenceClient
from tfsgate.settings import ServeSettings

log = logging.getLogger("tfsgate")


class FrontDoors:
    def __init__(
        self,
        settings: ServeSettings,
        router: Router,
        upstream: TritonInferenceClient,
        max_batch_size: int,
        grpc_options: GrpcOptions,
        rest_options: RestOptions,
        sink: PredictionSink | None = None,
        observations: ObservationSink | None = None,
    ) -> None:
        self.settings = settings
        self.grpc_options = grpc_options
        self.rest_options = rest_options
        # Request logs and predictions recorded for feedback: one writer thread, off the path.
        self.logger = PredictionLogger(settings.home_path / "request_logs", sink)
        # Gateways sharing the ports (--reuse_port: --gateway_workers' processes) call one Triton
        # side by side, so another's call fills Triton's turn while this one answers a batch; a
        # second call per lane would only halve the batches (3x1024 MLP, 32 clients, 2 workers:
        # 6,300-6,500 req/s at one call a lane, 5,600-5,800 at two).
        depth = partial(CallDepth, most=1) if settings.reuse_port else CallDepth
        coalescer = Coalescer(upstream, max_rows=max_batch_size, new_depth=depth)
        self.dataplane = DataPlane(
            router,
            upstream,
            coalescer,
            settings.enable_signature_method_name_check,
            logger=self.logger,
        )
        # What this gateway saw, for the control plane's rollout guard and shadow summary.
        self.reporter = (
            ObservationReporter(self.dataplane.stats, self.dataplane.shadows, observations)
            if observations is not None
            else None
        )
        self.grpc: GrpcServer | None = None
        self._servers: list[GrpcServer | RestServer] = []
        self._stopping = asyncio.Event()
        self._reporting: asyncio.Task[None] | None = None

    async def flush(self) -> None:
        """Wait until every queued request log entry is written (feedback joins on them)."""
        await asyncio.to_thread(self.logger.wait_idle)

    async def start(
        self,
        reloader: ConfigReloader | None = None,
        feedback: FeedbackHandler | None = None,
        serving: bool = True,
    ) -> None:
        s = self.settings
        self.logger.start()
        self.grpc = GrpcServer(self.dataplane, s, reloader, self.grpc_options)
        self._servers.append(self.grpc)
        if s.rest_api_port and s.rest_api_port == s.port:
            log.error(  # Server::BuildAndStart serves gRPC only
                "server_options.http_port cannot be same as grpc_port. Please use a different port"
                " for HTTP/REST API. Skipped exporting HTTP/REST API."
            )
        elif s.rest_api_port:
            self._servers.append(RestServer(self.dataplane, s, self.rest_options, feedback))
        await self.grpc.start(serving)
        for server in self._servers[1:]:
            await server.start()
        if self.reporter is not None:
            self._reporting = asyncio.ensure_future(self.reporter.run(self._stopping))
        where = [f"gRPC on {s.host}:{s.port}"] if s.port else []
        if s.grpc_socket_path:
            where.append(f"gRPC on unix:{s.grpc_socket_path}")
        if len(self._servers) > 1:
            where.append(f"REST on {s.host}:{s.rest_api_port}")
        log.info("serving %s", ", ".join(where))

    async def set_serving(self, serving: bool) -> None:
        if self.grpc is not None:
            await self.grpc.set_serving(serving)

    async def stop(self) -> None:
        self._stopping.set()
        if self._reporting is not None:
            with contextlib.suppress(Exception):
                await self._reporting
        for server in reversed(self._servers):
            with contextlib.suppress(Exception):
                await server.stop()
        await asyncio.to_thread(self.logger.stop)
