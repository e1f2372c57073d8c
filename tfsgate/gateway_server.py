"""``tfsgate gateway``: TF Serving's front doors alone, following the control plane's catalog.

Stateless: the routing table comes from the routing feed (``tfsgate/core/routing_feed.py``), read
by a thread that hands each new version to the router; requests never touch SQL. The Triton
instances are ``--triton_url``, or, without it, the ones the control plane publishes with each
table (an embedded Triton's ports change when it restarts).

The gateway starts whatever the state of the catalog and Triton: until a table has arrived every
request is UNAVAILABLE (503 with TF Serving's ``{"error": ...}``) and grpc.health.v1 reports
NOT_SERVING; a catalog that becomes unreachable later leaves the last table serving (the data
plane keeps working through a catalog outage). Several Triton instances are probed every half
second and calls spread over the READY ones (``gateway/upstream.py``); health is SERVING while a
table is held and at least one instance is READY. With ``--reuse_port`` (one of several
processes on the ports: ``--gateway_workers``, tfsgate/serve_workers.py) the doors open once it is
SERVING, or after 10 s, so that a worker started again takes no connection it cannot answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from control_plane.catalog.store import CatalogStore
from control_plane.converter.batching import BatchingConfig, BatchingConfigError
from control_plane.quality.feedback import FeedbackService
from gateway.routing import Router
from gateway.upstream import TritonInferenceClient
from tfsgate import gateway_workers, lifecycle
from tfsgate.core.pauses import pause
from tfsgate.core.routing_feed import FeedFollower, FeedState
from tfsgate.core.status import Code
from tfsgate.front_doors import FrontDoors
from tfsgate.preflight import check_front_door_ports
from tfsgate.serve_workers import ForwardingReloader, die_with_serve
from tfsgate.settings import ServeSettings
from tfsgate.startup import StartupError, front_door_options, report_no_effect

log = logging.getLogger("tfsgate")

WAITING = "no routing table from the control plane yet"
HEALTH_SECONDS = 0.5
READY_WAIT_SECONDS = 10.0  # a --reuse_port gateway's doors wait this long at most to be ready


class GatewayServer:
    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.router = Router(waiting=WAITING)
        # --triton_http_url, else --triton_url; empty: follow the feed's
        self.fixed_urls = settings.triton_inference_urls
        self.upstream: TritonInferenceClient | None = None  # made on the loop
        self.doors: FrontDoors | None = None
        self.store: CatalogStore | None = None
        self.follower: FeedFollower | None = None
        self.reloader: ForwardingReloader | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._updates: asyncio.Queue[FeedState] = asyncio.Queue()
        self._stopping = asyncio.Event()
        self._ready = asyncio.Event()  # a table and a ready Triton were there once
        self._tasks: list[asyncio.Task[None]] = []
        self._serving = False
        self._doors_open = False  # health changes go to the doors once they have started

    def preflight(self) -> int:
        s = self.settings
        if s.port == 0 and not s.grpc_socket_path:
            raise StartupError(
                "At least one of server_options.grpc_port or server_options.grpc_socket_path"
                " must be set."
            )
        try:
            batching = BatchingConfig.from_flags(s.enable_batching, s.batching_parameters_file)
        except BatchingConfigError as exc:
            raise StartupError(str(exc), Code.INVALID_ARGUMENT) from None
        self.grpc_options, self.rest_options = front_door_options(s)
        if not s.reuse_port:  # beside its sibling workers the ports are taken on purpose
            check_front_door_ports(s)
        return batching.max_batch_size

    async def start(self) -> None:
        s = self.settings
        die_with_serve()  # when a tfsgate serve started this gateway as one of its workers
        max_batch_size = self.preflight()
        self._loop = asyncio.get_running_loop()
        self.upstream = TritonInferenceClient(self.fixed_urls)
        # The catalog is only connected to when a prediction is recorded, feedback arrives or a
        # guarded model's observations are reported.
        self.store = CatalogStore.from_url(s.catalog_url)
        self.doors = doors = FrontDoors(
            s,
            self.router,
            self.upstream,
            max_batch_size,
            self.grpc_options,
            self.rest_options,
            self.store.rollouts,
            self.store.observations,
        )
        feedback = FeedbackService(self.store, doors.flush)
        if s.control_plane_socket:  # a worker of tfsgate serve: its reloads go there
            self.reloader = ForwardingReloader(s.control_plane_socket)
        self._tasks.append(asyncio.ensure_future(self._apply_updates()))
        self._tasks.append(asyncio.ensure_future(self.upstream.run_probes(self._stopping)))
        self._tasks.append(asyncio.ensure_future(self._follow_health()))
        self.follower = FeedFollower(s.catalog_url, self._on_state)
        self.follower.start()
        if s.reuse_port:
            # One of several processes on the ports: each connection the kernel hands it would
            # be UNAVAILABLE until its first table and a ready Triton (under a second when a
            # serve's worker is restarted), where a sibling could answer it. Bounded, so a
            # catalog that is down at start still meets a listening, NOT_SERVING gateway.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), READY_WAIT_SECONDS)
        started_with = self._serving
        await doors.start(self.reloader, feedback, serving=started_with)
        self._doors_open = True
        if self._serving != started_with:  # changed while the doors started
            await doors.set_serving(self._serving)

    def _on_state(self, state: FeedState) -> None:
        """From the follower's thread: the table at once (one reference swap), the rest (Triton
        URLs, health) on the event loop."""
        self.router.publish(state.table)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._updates.put_nowait, state)

    async def _apply_updates(self) -> None:
        while True:
            state = await self._updates.get()
            urls = self.fixed_urls or state.triton_urls
            assert self.upstream is not None
            if urls and urls != self.upstream.urls:
                log.info("Triton at %s", ", ".join(urls))
                await self.upstream.set_urls(urls)
                await self.upstream.probe()
            await self._set_health()

    async def _follow_health(self) -> None:
        while not self._stopping.is_set():
            await self._set_health()
            await pause(self._stopping, HEALTH_SECONDS)

    async def _set_health(self) -> None:
        assert self.upstream is not None and self.doors is not None
        serving = not self.router.waiting and self.upstream.any_ready()
        if serving:
            self._ready.set()
        if serving != self._serving:
            self._serving = serving
            if self._doors_open:  # else the doors' start applies it
                await self.doors.set_serving(serving)

    async def stop(self) -> None:
        if self.follower is not None:
            await asyncio.to_thread(self.follower.stop)
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.doors is not None:
            await self.doors.stop()
        if self.upstream is not None:
            await self.upstream.close()
        if self.reloader is not None:
            await self.reloader.close()
        if self.store is not None:
            self.store.close()

    async def run_until_signalled(self) -> int:
        return await lifecycle.until_signalled(self.start, self.stop)


def serve_gateway(settings: ServeSettings, argv: Sequence[str] = ()) -> int:
    """One gateway, or with ``--gateway_workers`` N > 1 a supervisor of N (``argv``: the role's
    flags, given to each worker)."""
    if settings.gateway_workers > 1:
        return gateway_workers.supervise(settings, argv)
    report_no_effect(settings)
    return lifecycle.run(GatewayServer(settings).run_until_signalled)
