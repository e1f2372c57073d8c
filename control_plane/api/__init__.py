"""The admin REST API (own port, default 8502): models, versions, labels, promote/rollback,
traffic and the audit log over the catalog, applied by the reconciler."""

from control_plane.api.app import create_admin_app
from control_plane.api.context import AdminReconciler
from control_plane.api.settings import AdminSettings

__all__ = ["AdminReconciler", "AdminSettings", "create_admin_app"]
