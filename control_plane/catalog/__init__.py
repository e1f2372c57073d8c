"""The model catalog: SQL store of models, versions, labels, traffic and audit events."""

from control_plane.catalog.engine import create_engine_for, default_database_url
from control_plane.catalog.entities import (
    PREVIOUS_STABLE_LABEL,
    STABLE_LABEL,
    Action,
    Event,
    Expect,
    Model,
    ModelVersion,
    Runner,
    VersionPin,
    VersionState,
)
from control_plane.catalog.errors import CatalogError
from control_plane.catalog.store import CatalogStore

__all__ = [
    "PREVIOUS_STABLE_LABEL",
    "STABLE_LABEL",
    "Action",
    "CatalogError",
    "CatalogStore",
    "Event",
    "Expect",
    "Model",
    "ModelVersion",
    "Runner",
    "VersionPin",
    "VersionState",
    "create_engine_for",
    "default_database_url",
]
