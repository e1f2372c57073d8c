"""The admin app factory (served by the composition root: ``tfsgate/admin_door.py``)."""

from __future__ import annotations

from fastapi import FastAPI, Response

from control_plane import metrics
from control_plane.api.context import AdminContext, AdminReconciler
from control_plane.api.errors import install_error_handlers
from control_plane.api.rollout_routes import RolloutParts, rollout_router
from control_plane.api.routes import router
from control_plane.api.settings import AdminSettings
from control_plane.catalog.store import CatalogStore

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
