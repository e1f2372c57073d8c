"""What the route functions work with: the catalog, the reconciler and the settings."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from control_plane.api.errors import AdminError
from control_plane.api.schemas import ModelOut, ModelSource, StableOut, VersionOut
from control_plane.api.settings import AdminSettings
from control_plane.catalog.entities import Model, ModelVersion, VersionPin
from control_plane.catalog.errors import CatalogError
from control_plane.catalog.store import CatalogStore
from control_plane.sources.model_config import ModelSetConfig
from tfsgate.core.status import Code

log = logging.getLogger(__name__)


class AdminReconciler(Protocol):
    """The part of ``control_plane.reconciler.Reconciler`` the admin API drives."""

    @property
    def desired(self) -> ModelSetConfig: ...

    def config_roots(self) -> list[Path]: ...

    async def reconcile(self) -> None: ...

    async def publish(self, only: str | None = None) -> Any: ...

    async def statistics(self, model: str) -> dict[int, dict[str, Any]]: ...

    async def import_version(
        self,
        model: str,
        source: Path,
        actor: str,
        *,
        version: int | None = None,
        pin: VersionPin | None = None,
    ) -> ModelVersion: ...


@dataclass(frozen=True)
class AdminContext:
    store: CatalogStore
    reconciler: AdminReconciler
    settings: AdminSettings

    def roots(self) -> list[Path]:
        """Configured models' base paths plus TFSGATE_MODEL_ROOTS."""
        return [*self.reconciler.config_roots(), *self.settings.extra_roots()]

    def source_of(self, model: Model) -> ModelSource:
        if model.name in self.reconciler.desired.names:
            return "config"
        return "admin" if model.admin_registered else "retired"

    def model_out(self, name: str) -> ModelOut:
        """A model with versions, labels and traffic (blocking: call in a thread)."""
        model = self.store.get_model(name)
        return ModelOut.from_entities(
            model,
            self.source_of(model),
            self.store.list_model_versions(name),
            self.store.list_labels(name),
            self.store.get_traffic(name),
        )

    def version_out(self, model: str, version: int) -> VersionOut:
        entity = self.store.get_model_version(model, version)
        return VersionOut.from_entity(entity, self.store.list_labels(model))

    def stable_out(self, model: str) -> StableOut:
        return StableOut.from_labels(model, self.store.list_labels(model))

    async def apply(self) -> None:
        """Run a reconcile pass after a committed change to the desired state.

        The change is already in the catalog; if Triton cannot be driven now the periodic pass
        applies it later, and the caller hears so (UNAVAILABLE) instead of a bare 500.
        """
        try:
            await self.reconciler.reconcile()
        except Exception as exc:  # noqa: BLE001 - any failure: recorded, applied later
            log.exception("reconcile after an admin change failed")
            raise AdminError(
                Code.UNAVAILABLE,
                f"change recorded but not yet applied ({exc}); the next reconcile pass retries",
            ) from exc

    async def publish(self, model: str) -> None:
        """Re-publish the routing table after a change to ``model``'s label, stable, traffic or
        shadow (only that model's routes are read again).

        A failure is only logged: the change is committed, and every reconcile pass publishes.
        """
        try:
            await self.reconciler.publish(model)
        except Exception:  # noqa: BLE001
            log.exception("publishing the routing table failed; the next pass retries")

    async def with_current_state(self, model: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a blocking store verb; a lost race (ABORTED) answers with the current state."""
        try:
            return await asyncio.to_thread(call, *args, **kwargs)
        except CatalogError as exc:
            if exc.code != Code.ABORTED:
                raise
            current = await asyncio.to_thread(self.stable_out, model)
            raise AdminError(exc.code, exc.message, current=current.model_dump()) from exc
