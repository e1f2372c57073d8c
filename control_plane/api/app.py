"""The admin app factory and its server, uvicorn embedded in the composition root's loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import uvicorn
from fastapi import FastAPI, Response

from control_plane import metrics
from control_plane.api.context import AdminContext, AdminReconciler
from control_plane.api.errors import install_error_handlers
from control_plane.api.rollout_routes import RolloutParts, rollout_router
from control_plane.api.routes import router
from control_plane.api.settings import AdminSettings
from control_plane.catalog.store import CatalogStore

log = logging.getLogger(__name__)

DESCRIPTION = """\
Models, versions, labels, promote/rollback, traffic and the audit log of a tfsgate server.

Every mutation needs `Authorization: Bearer $TFSGATE_ADMIN_TOKEN` when a token is configured;
without one the API listens on 127.0.0.1 only. Each mutation is one catalog transaction with one
audit event, or nothing. Errors are `{"error": "..."}` with TF Serving's status table.
"""


def create_admin_app(
    store: CatalogStore,
    reconciler: AdminReconciler,
    settings: AdminSettings,
    rollout_parts: RolloutParts | None = None,
) -> FastAPI:
    """A new admin app over ``store`` and ``reconciler``; OpenAPI at ``/openapi.json``."""
    app = FastAPI(title="tfsgate admin API", version="1", description=DESCRIPTION)
    app.state.context = AdminContext(store, reconciler, settings)
    app.state.admin_token = settings.token
    app.state.rollout_parts = rollout_parts
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(rollout_router)
    app.add_api_route(
        "/metrics",
        _metrics,
        methods=["GET"],
        tags=["metrics"],
        summary="The control plane's Prometheus metrics (docs/metrics.md); no token needed",
        response_class=Response,
    )
    return app


async def _metrics() -> Response:
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)


class _EmbeddedUvicorn(uvicorn.Server):
    """Signals belong to the composition root, not to uvicorn."""

    def capture_signals(self) -> Any:
        return contextlib.nullcontext()


class AdminServer:
    """The admin API on its own port; loopback only unless a token is configured."""

    def __init__(
        self,
        store: CatalogStore,
        reconciler: AdminReconciler,
        settings: AdminSettings,
        rollout_parts: RolloutParts | None = None,
    ) -> None:
        if settings.token is None and settings.host != settings.bind_host:
            log.warning("TFSGATE_ADMIN_TOKEN is not set: the admin API listens on 127.0.0.1 only")
        config = uvicorn.Config(
            create_admin_app(store, reconciler, settings, rollout_parts),
            host=settings.bind_host,
            port=settings.admin_port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self._server = _EmbeddedUvicorn(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound port (useful with admin_port 0); valid after ``start``."""
        sockets = self._server.servers[0].sockets
        port: int = sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._task = asyncio.ensure_future(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()  # re-raise why it failed to bind
                raise RuntimeError("admin server stopped during start-up")
            await asyncio.sleep(0.01)
        log.info("admin API on %s:%s", self._server.config.host, self.port)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
