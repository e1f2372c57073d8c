"""The catalog's rollout and quality verbs, ``store.rollouts``: rollouts and their guard
thresholds here; traffic and shadows (``traffic_store.py``) and recorded predictions with their
feedback (``prediction_store.py``) joined in.

Kept beside ``CatalogStore`` (whose sessions, locking and audit helpers they use) so that file
stays about models, versions and labels. Every configuration change is one transaction with one
audit event, like the rest of the catalog.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from control_plane.catalog.entities import STABLE_LABEL, Action, RolloutRecord, VersionState
from control_plane.catalog.errors import CatalogError
from control_plane.catalog.orm import (
    LabelTrafficRow,
    ModelRow,
    RolloutRow,
    ThresholdsRow,
    TrafficRow,
)
from control_plane.catalog.prediction_store import PredictionVerbs
from control_plane.catalog.traffic_store import TrafficVerbs
from control_plane.catalog.verb_group import invalid_argument, utc_now
from tfsgate.core.status import Code

RUNNING = "running"
_ROLLOUTS = RolloutRow.__table__
_RUNNING_ROLLOUTS = (
    select(_ROLLOUTS, ModelRow.name.label("model_name"))
    .join(ModelRow, ModelRow.id == _ROLLOUTS.c.model_id)
    .where(_ROLLOUTS.c.state == RUNNING)
    .order_by(_ROLLOUTS.c.id)
)


def _to_record(row: Any, model: str) -> RolloutRecord:
    """From an ORM row or a plain result row of the table's columns (same attribute names)."""
    return RolloutRecord(
        id=row.id,
        model=model,
        candidate=row.candidate,
        baseline=row.baseline,
        steps=tuple(int(s) for s in row.steps),
        interval_seconds=row.interval_seconds,
        step_index=row.step_index,
        state=row.state,
        reason=row.reason,
        started_at=row.started_at,
        step_started_at=row.step_started_at,
        finished_at=row.finished_at,
    )


class RolloutStore(TrafficVerbs, PredictionVerbs):
    # ------------------------------------------------------------ thresholds

    def set_thresholds(
        self, model: str, thresholds: Mapping[str, Any], actor: str
    ) -> dict[str, Any]:
        value = dict(thresholds)
        with self._sessions.write() as session:
            row = self._catalog._require_model(session, model, lock=True)  # noqa: SLF001
            current = session.get(ThresholdsRow, row.id)
            before = dict(current.thresholds) if current is not None else None
            if before == value:
                return value
            session.merge(ThresholdsRow(model_id=row.id, thresholds=value))
            session.flush()
            self._catalog._record(  # noqa: SLF001
                session, actor, Action.SET_THRESHOLDS, model, None, before, value
            )
            return value

    def get_thresholds(self, model: str) -> dict[str, Any]:
        """The model's thresholds; {} means the guard's defaults."""
        with self._sessions.read() as session:
            row = self._catalog._require_model(session, model)  # noqa: SLF001
            current = session.get(ThresholdsRow, row.id)
            return dict(current.thresholds) if current is not None else {}

    # ------------------------------------------------------------ rollouts

    def start_rollout(
        self, model: str, candidate: int, steps: Sequence[int], interval_seconds: float, actor: str
    ) -> RolloutRecord:
        """Start moving traffic from ``stable`` to ``candidate``: the first step's split is set
        in the same transaction. One running rollout per model."""
        if not steps:
            raise invalid_argument("a rollout needs at least one step")
        if not (interval_seconds > 0 and math.isfinite(interval_seconds)):
            raise invalid_argument("interval must be a positive number of seconds")
        with self._sessions.write() as session:
            row = self._catalog._require_model(session, model, lock=True)  # noqa: SLF001
            if self._running(session, row) is not None:
                raise CatalogError(
                    Code.FAILED_PRECONDITION, f"model {model!r} already has a running rollout"
                )
            target = self._catalog._require_version(session, row, candidate)  # noqa: SLF001
            if target.state != VersionState.AVAILABLE:
                raise CatalogError(
                    Code.FAILED_PRECONDITION,
                    f"model {model!r} version {candidate} is {target.state}, not AVAILABLE",
                )
            baseline = self._catalog._labels(session, row.id).get(STABLE_LABEL)  # noqa: SLF001
            if baseline is None:
                raise CatalogError(
                    Code.FAILED_PRECONDITION,
                    f"model {model!r} has no stable version to compare with; promote one first",
                )
            if baseline == candidate:
                raise invalid_argument(f"version {candidate} already is stable")
            now = utc_now()
            rollout = RolloutRow(
                model_id=row.id,
                candidate=candidate,
                baseline=baseline,
                steps=[int(s) for s in steps],
                interval_seconds=float(interval_seconds),
                step_index=0,
                state=RUNNING,
                reason="",
                started_at=now,
                step_started_at=now,
                finished_at=None,
            )
            session.add(rollout)
            session.flush()
            self._set_weights(session, row, baseline, candidate, int(steps[0]))
            record = _to_record(rollout, model)
            self._catalog._record(  # noqa: SLF001
                session, actor, Action.ROLLOUT_START, model, candidate, None, record.to_json()
            )
            return record

    def advance_rollout(
        self,
        model: str,
        rollout_id: int,
        action: str,
        actor: str,
        figures: Mapping[str, Any] | None = None,
        reason: str = "",
    ) -> RolloutRecord:
        """Apply a guard decision or an operator's abort to a running rollout.

        ``step``: next step's weights. ``rollback``/``abort``: candidate weight 0. ``complete``:
        candidate promoted to ``stable`` and all unnamed traffic follows the ``stable`` label.
        The audit event carries the guard's figures. A rollout that is no longer running (an
        abort raced the guard) is FAILED_PRECONDITION and nothing changes.
        """
        with self._sessions.write() as session:
            row = self._catalog._require_model(session, model, lock=True)  # noqa: SLF001
            rollout = session.get(RolloutRow, rollout_id)
            if rollout is None or rollout.model_id != row.id:
                raise CatalogError(Code.NOT_FOUND, f"model {model!r} has no rollout {rollout_id}")
            if rollout.state != RUNNING:
                raise CatalogError(
                    Code.FAILED_PRECONDITION,
                    f"rollout {rollout_id} of {model!r} is {rollout.state}, not running",
                )
            before = _to_record(rollout, model).to_json()
            now = utc_now()
            baseline = rollout.baseline
            if action == "step":
                rollout.step_index += 1
                rollout.step_started_at = now
                weight = int(rollout.steps[rollout.step_index])
                self._set_weights(session, row, baseline, rollout.candidate, weight)
                event = Action.ROLLOUT_STEP
            elif action in ("rollback", "abort"):
                rollout.state = "rolled_back" if action == "rollback" else "aborted"
                rollout.reason = reason
                rollout.finished_at = now
                self._set_weights(session, row, baseline, rollout.candidate, 0)
                event = Action.ROLLOUT_ROLLBACK if action == "rollback" else Action.ROLLOUT_ABORT
            elif action == "complete":
                rollout.state = "completed"
                rollout.reason = reason or "all steps passed"
                rollout.finished_at = now
                self._catalog._move_stable(  # noqa: SLF001
                    session, row, rollout.candidate, previous=baseline
                )
                session.execute(delete(TrafficRow).where(TrafficRow.model_id == row.id))
                session.execute(delete(LabelTrafficRow).where(LabelTrafficRow.model_id == row.id))
                session.add(LabelTrafficRow(model_id=row.id, label=STABLE_LABEL, weight=100.0))
                event = Action.ROLLOUT_COMPLETE
            else:
                raise invalid_argument(f"unknown rollout action {action!r}")
            session.flush()
            after: dict[str, Any] = _to_record(rollout, model).to_json()
            if figures:
                after["figures"] = dict(figures)
            self._catalog._record(  # noqa: SLF001
                session, actor, event, model, rollout.candidate, before, after
            )
            return _to_record(rollout, model)

    def _set_weights(
        self, session: Session, row: ModelRow, baseline: int | None, candidate: int, percent: int
    ) -> None:
        session.execute(delete(TrafficRow).where(TrafficRow.model_id == row.id))
        session.execute(delete(LabelTrafficRow).where(LabelTrafficRow.model_id == row.id))
        weights = {candidate: float(percent)}
        if baseline is not None:
            weights[baseline] = float(100 - percent)
        session.add_all(
            TrafficRow(model_id=row.id, version=v, weight=w) for v, w in weights.items()
        )
        session.flush()

    @staticmethod
    def _running(session: Session, row: ModelRow) -> RolloutRow | None:
        return session.scalars(
            select(RolloutRow).where(RolloutRow.model_id == row.id, RolloutRow.state == RUNNING)
        ).first()

    def latest_rollout(self, model: str) -> RolloutRecord | None:
        with self._sessions.read() as session:
            row = self._catalog._require_model(session, model)  # noqa: SLF001
            found = session.scalars(
                select(RolloutRow)
                .where(RolloutRow.model_id == row.id)
                .order_by(RolloutRow.id.desc())
            ).first()
            return _to_record(found, model) if found is not None else None

    def running_rollouts(self) -> list[RolloutRecord]:
        """Read with every table published (``guarded_models``) and by the guard's rounds."""
        with self._sessions.snapshot() as db:
            return [_to_record(row, row.model_name) for row in db.execute(_RUNNING_ROLLOUTS)]

    def guarded_models(self) -> set[str]:
        return {r.model for r in self.running_rollouts()}
