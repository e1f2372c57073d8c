"""The base of the verb groups kept beside ``CatalogStore`` (``store.rollouts``): they run in its
sessions and use its locking and audit helpers, so each configuration change is still one
transaction with one audit event."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from control_plane.catalog.errors import CatalogError
from tfsgate.core.status import Code

if TYPE_CHECKING:
    from control_plane.catalog.store import CatalogStore


def utc_now() -> datetime:
    return datetime.now(UTC)


def invalid_argument(message: str) -> CatalogError:
    return CatalogError(Code.INVALID_ARGUMENT, message)


class VerbGroup:
    def __init__(self, catalog: CatalogStore) -> None:
        self._catalog = catalog
        self._sessions = catalog._sessions  # noqa: SLF001 - same package, one transaction model
