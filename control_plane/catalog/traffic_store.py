"""Traffic over versions and labels, and shadow copies: the catalog verbs behind the admin API's
``/traffic`` and ``/shadow`` (part of ``store.rollouts``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from control_plane.catalog.entities import Action, RouteState, Shadow, VersionState
from control_plane.catalog.errors import CatalogError
from control_plane.catalog.orm import LabelTrafficRow, ModelRow, ShadowRow, TrafficRow
from control_plane.catalog.verb_group import VerbGroup, invalid_argument
from tfsgate.core.status import Code


def split_targets(weights: Mapping[str, float]) -> tuple[dict[int, float], dict[str, float]]:
    """``{"1": 90, "canary": 10}`` -> version weights and label weights, validated."""
    if not isinstance(weights, Mapping):
        raise invalid_argument("weights must be a mapping of version or label to weight")
    versions: dict[int, float] = {}
    labels: dict[str, float] = {}
    for key, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise invalid_argument(f"weight of {key!r} must be a number, got {weight!r}")
        if not math.isfinite(weight) or weight < 0:
            raise invalid_argument(f"weight of {key!r} must be finite and >= 0")
        text = str(key).strip()
        if text.isdigit():
            versions[int(text)] = float(weight)
        elif text:
            labels[text] = float(weight)
        else:
            raise invalid_argument("a traffic target must be a version number or a label")
    if (versions or labels) and sum(versions.values()) + sum(labels.values()) <= 0:
        raise invalid_argument("at least one weight must be positive")
    return versions, labels


# Read with every table published (``route_state``): built once, as the catalog's own reads.
_LABEL_WEIGHTS_OF = (
    select(LabelTrafficRow.label, LabelTrafficRow.weight)
    .where(LabelTrafficRow.model_id == bindparam("model_id"))
    .order_by(LabelTrafficRow.label)
)
_SHADOW_OF = select(ShadowRow.version, ShadowRow.percent, ShadowRow.tolerance).where(
    ShadowRow.model_id == bindparam("model_id")
)


class TrafficVerbs(VerbGroup):
    def set_traffic_split(
        self, model: str, weights: Mapping[str, float], actor: str
    ) -> dict[str, float]:
        """Replace the split; keys are version numbers ("1") or labels ("stable").

        A version or label with weight > 0 must be AVAILABLE (a label: the version it names).
        """
        versions, labels = split_targets(weights)
        with self._sessions.write() as session:
            row = self._catalog._require_model(session, model, lock=True)  # noqa: SLF001
            self._check_targets(session, row, versions, labels)
            before = self._split(session, row.id)
            after = {**{str(v): w for v, w in versions.items()}, **labels}
            if before == after:
                return after
            session.execute(delete(TrafficRow).where(TrafficRow.model_id == row.id))
            session.execute(delete(LabelTrafficRow).where(LabelTrafficRow.model_id == row.id))
            session.add_all(
                TrafficRow(model_id=row.id, version=v, weight=w) for v, w in versions.items()
            )
            session.add_all(
                LabelTrafficRow(model_id=row.id, label=k, weight=w) for k, w in labels.items()
            )
            self._catalog._record(  # noqa: SLF001
                session,
                actor,
                Action.SET_TRAFFIC,
                model,
                None,
                {"weights": before},
                {"weights": after},
            )
            return after

    def get_traffic_split(self, model: str) -> dict[str, float]:
        with self._sessions.snapshot() as db:
            return self._split(db, self._catalog._model_row(db, model).id)  # noqa: SLF001

    def effective_traffic(self, model: str) -> dict[int, float]:
        """The split with labels resolved to versions (what gateways route by)."""
        with self._sessions.snapshot() as db:
            return self._effective(db, self._catalog._model_row(db, model).id)  # noqa: SLF001

    def route_state(self, model: str) -> RouteState:
        """A model's versions, labels, effective split and shadow from one snapshot (read apart,
        a promote landing between two reads could pair the new labels with the old split), in
        one transaction instead of four for each table published."""
        catalog = self._catalog
        with self._sessions.snapshot() as db:
            row = catalog._model_row(db, model)  # noqa: SLF001
            labels = catalog._labels(db, row.id)  # noqa: SLF001
            return RouteState(
                versions=tuple(catalog._versions(db, row)),  # noqa: SLF001
                labels=labels,
                traffic=self._effective(db, row.id, labels),
                shadow=self._shadow(db, row.id, model),
            )

    def _effective(
        self, db: Connection | Session, model_id: int, labels: dict[str, int] | None = None
    ) -> dict[int, float]:
        weights = dict(self._catalog._traffic(db, model_id))  # noqa: SLF001
        if labels is None:
            labels = self._catalog._labels(db, model_id)  # noqa: SLF001
        for label, weight in self._label_weights(db, model_id).items():
            if label in labels:
                weights[labels[label]] = weights.get(labels[label], 0.0) + weight
        return weights

    @staticmethod
    def _label_weights(db: Connection | Session, model_id: int) -> dict[str, float]:
        rows = db.execute(_LABEL_WEIGHTS_OF, {"model_id": model_id})
        return {label: weight for label, weight in rows}

    def _split(self, db: Connection | Session, model_id: int) -> dict[str, float]:
        versions = self._catalog._traffic(db, model_id)  # noqa: SLF001
        return {**{str(v): w for v, w in versions.items()}, **self._label_weights(db, model_id)}

    def _check_targets(
        self,
        session: Session,
        row: ModelRow,
        versions: Mapping[int, float],
        labels: Mapping[str, float],
    ) -> None:
        known = self._catalog._labels(session, row.id)  # noqa: SLF001
        for label in labels:
            if label not in known:
                raise CatalogError(
                    Code.FAILED_PRECONDITION, f"model {row.name!r} has no label {label!r}"
                )
        wanted = dict(versions)
        for label, weight in labels.items():
            wanted[known[label]] = wanted.get(known[label], 0.0) + weight
        for version, weight in wanted.items():
            target = self._catalog._require_version(session, row, version)  # noqa: SLF001
            if weight > 0 and target.state != VersionState.AVAILABLE:
                raise CatalogError(
                    Code.FAILED_PRECONDITION,
                    f"model {row.name!r} version {version} is {target.state}, not AVAILABLE; "
                    "it cannot take traffic",
                )

    # ------------------------------------------------------------ shadow

    def set_shadow(
        self, model: str, version: int | None, percent: float, tolerance: float, actor: str
    ) -> Shadow | None:
        """Copy ``percent`` of the model's traffic to ``version``; None (or 0 %) removes it."""
        if version is not None and percent > 0:
            if not (0 < percent <= 100 and math.isfinite(percent)):
                raise invalid_argument(f"percent must be in (0, 100], got {percent}")
            if not (tolerance >= 0 and math.isfinite(tolerance)):
                raise invalid_argument(f"tolerance must be finite and >= 0, got {tolerance}")
        with self._sessions.write() as session:
            row = self._catalog._require_model(session, model, lock=True)  # noqa: SLF001
            current = session.get(ShadowRow, row.id)
            before = self._shadow_json(current)
            if version is None or percent <= 0:
                if current is None:
                    return None
                session.delete(current)
                after = None
            else:
                self._catalog._require_version(session, row, version)  # noqa: SLF001
                session.merge(
                    ShadowRow(
                        model_id=row.id, version=version, percent=percent, tolerance=tolerance
                    )
                )
                after = {"version": version, "percent": percent, "tolerance": tolerance}
                if before == after:
                    return Shadow(model, version, percent, tolerance)
            session.flush()
            self._catalog._record(  # noqa: SLF001
                session, actor, Action.SET_SHADOW, model, version, before, after
            )
            return None if after is None else Shadow(model, version, percent, tolerance)  # type: ignore[arg-type]

    def get_shadow(self, model: str) -> Shadow | None:
        with self._sessions.snapshot() as db:
            return self._shadow(db, self._catalog._model_row(db, model).id, model)  # noqa: SLF001

    @staticmethod
    def _shadow(db: Connection, model_id: int, model: str) -> Shadow | None:
        shadow = db.execute(_SHADOW_OF, {"model_id": model_id}).first()
        if shadow is None:
            return None
        return Shadow(model, shadow.version, shadow.percent, shadow.tolerance)

    @staticmethod
    def _shadow_json(row: ShadowRow | None) -> dict[str, Any] | None:
        if row is None:
            return None
        return {"version": row.version, "percent": row.percent, "tolerance": row.tolerance}
