"""The catalog's rollout and quality verbs: traffic over labels, shadows, thresholds, rollouts,
recorded predictions and feedback.

Kept beside ``CatalogStore`` (whose sessions, locking and audit helpers it uses) so that file
stays about models, versions and labels. Every configuration change is one transaction with one
audit event, like the rest of the catalog. Predictions and feedback are data, not configuration:
they are written in batches without audit events.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from control_plane.catalog.entities import (
    STABLE_LABEL,
    Action,
    RolloutRecord,
    Shadow,
    VersionState,
)
from control_plane.catalog.errors import CatalogError
from control_plane.catalog.orm import (
    FeedbackRow,
    LabelTrafficRow,
    ModelRow,
    PredictionRow,
    RolloutRow,
    ShadowRow,
    ThresholdsRow,
    TrafficRow,
)
from tfsgate.core.status import Code

if TYPE_CHECKING:
    from control_plane.catalog.store import CatalogStore

RUNNING = "running"
MAX_REQUEST_ID_LENGTH = 128


def _now() -> datetime:
    return datetime.now(UTC)


def _invalid(message: str) -> CatalogError:
    return CatalogError(Code.INVALID_ARGUMENT, message)


def _to_record(row: RolloutRow, model: str) -> RolloutRecord:
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


def split_targets(weights: Mapping[str, float]) -> tuple[dict[int, float], dict[str, float]]:
    """``{"1": 90, "canary": 10}`` -> version weights and label weights, validated."""
    if not isinstance(weights, Mapping):
        raise _invalid("weights must be a mapping of version or label to weight")
    versions: dict[int, float] = {}
    labels: dict[str, float] = {}
    for key, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise _invalid(f"weight of {key!r} must be a number, got {weight!r}")
        if not math.isfinite(weight) or weight < 0:
            raise _invalid(f"weight of {key!r} must be finite and >= 0")
        text = str(key).strip()
        if text.isdigit():
            versions[int(text)] = float(weight)
        elif text:
            labels[text] = float(weight)
        else:
            raise _invalid("a traffic target must be a version number or a label")
    if (versions or labels) and sum(versions.values()) + sum(labels.values()) <= 0:
        raise _invalid("at least one weight must be positive")
    return versions, labels


class RolloutStore:
    def __init__(self, catalog: CatalogStore) -> None:
        self._catalog = catalog
        self._sessions = catalog._sessions  # noqa: SLF001 - same package, one transaction model

    # ------------------------------------------------------------ traffic over labels

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
            before = self._split(session, row)
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
        with self._sessions.read() as session:
            row = self._catalog._require_model(session, model)  # noqa: SLF001
            return self._split(session, row)

    def effective_traffic(self, model: str) -> dict[int, float]:
        """The split with labels resolved to versions (what gateways route by)."""
        with self._sessions.read() as session:
            row = self._catalog._require_model(session, model)  # noqa: SLF001
            return self._effective(session, row)

    def _effective(self, session: Session, row: ModelRow) -> dict[int, float]:
        weights = dict(self._catalog._traffic(session, row))  # noqa: SLF001
        labels = self._catalog._labels(session, row)  # noqa: SLF001
        for label, weight in self._label_weights(session, row).items():
            if label in labels:
                weights[labels[label]] = weights.get(labels[label], 0.0) + weight
        return weights

    @staticmethod
    def _label_weights(session: Session, row: ModelRow) -> dict[str, float]:
        rows = session.execute(
            select(LabelTrafficRow.label, LabelTrafficRow.weight)
            .where(LabelTrafficRow.model_id == row.id)
            .order_by(LabelTrafficRow.label)
        )
        return {label: weight for label, weight in rows}

    def _split(self, session: Session, row: ModelRow) -> dict[str, float]:
        versions = self._catalog._traffic(session, row)  # noqa: SLF001
        return {**{str(v): w for v, w in versions.items()}, **self._label_weights(session, row)}

    def _check_targets(
        self,
        session: Session,
        row: ModelRow,
        versions: Mapping[int, float],
        labels: Mapping[str, float],
    ) -> None:
        known = self._catalog._labels(session, row)  # noqa: SLF001
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
                raise _invalid(f"percent must be in (0, 100], got {percent}")
            if not (tolerance >= 0 and math.isfinite(tolerance)):
                raise _invalid(f"tolerance must be finite and >= 0, got {tolerance}")
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
        with self._sessions.read() as session:
            row = self._catalog._require_model(session, model)  # noqa: SLF001
            shadow = session.get(ShadowRow, row.id)
            if shadow is None:
                return None
            return Shadow(model, shadow.version, shadow.percent, shadow.tolerance)

    @staticmethod
    def _shadow_json(row: ShadowRow | None) -> dict[str, Any] | None:
        if row is None:
            return None
        return {"version": row.version, "percent": row.percent, "tolerance": row.tolerance}

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
            raise _invalid("a rollout needs at least one step")
        if not (interval_seconds > 0 and math.isfinite(interval_seconds)):
            raise _invalid("interval must be a positive number of seconds")
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
            baseline = self._catalog._labels(session, row).get(STABLE_LABEL)  # noqa: SLF001
            if baseline is None:
                raise CatalogError(
                    Code.FAILED_PRECONDITION,
                    f"model {model!r} has no stable version to compare with; promote one first",
                )
            if baseline == candidate:
                raise _invalid(f"version {candidate} already is stable")
            now = _now()
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
            now = _now()
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
                raise _invalid(f"unknown rollout action {action!r}")
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
        with self._sessions.read() as session:
            rows = session.execute(
                select(RolloutRow, ModelRow.name)
                .join(ModelRow, ModelRow.id == RolloutRow.model_id)
                .where(RolloutRow.state == RUNNING)
                .order_by(RolloutRow.id)
            )
            return [_to_record(rollout, name) for rollout, name in rows]

    def guarded_models(self) -> set[str]:
        return {r.model for r in self.running_rollouts()}

    # ------------------------------------------------------------ predictions and feedback

    def record_predictions(self, records: Iterable[Any]) -> int:
        """Store recorded predictions (``gateway.prediction_log.PredictionRecord``-like);
        unknown models are skipped, a request id seen twice for one version is kept once."""
        by_model: dict[str, list[Any]] = {}
        for record in records:
            by_model.setdefault(record.model, []).append(record)
        if not by_model:
            return 0
        now, stored = _now(), 0
        with self._sessions.write() as session:
            ids = dict(
                session.execute(
                    select(ModelRow.name, ModelRow.id).where(ModelRow.name.in_(list(by_model)))
                ).all()
            )
            rows = [
                {
                    "model_id": ids[model],
                    "request_id": r.request_id[:MAX_REQUEST_ID_LENGTH],
                    "version": r.version,
                    "prediction": r.to_json(),
                    "created_at": now,
                }
                for model, records_of in by_model.items()
                if model in ids
                for r in records_of
            ]
            if rows:
                session.execute(self._insert_ignoring_duplicates(session, PredictionRow), rows)
                stored = len(rows)
        return stored

    @staticmethod
    def _insert_ignoring_duplicates(session: Session, table: Any) -> Any:
        # ON CONFLICT DO NOTHING on both backends: a retried batch must not fail the rest.
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        return insert(table).on_conflict_do_nothing()

    def add_feedback(self, model: str, items: Sequence[tuple[str, Any]]) -> tuple[int, int]:
        """Ground truth by request id: (matched, unmatched). Only ids with a recorded prediction
        are stored; a later value for the same id replaces the earlier one."""
        with self._sessions.write() as session:
            row = self._catalog._require_model(session, model)  # noqa: SLF001
            wanted = {request_id for request_id, _ in items}
            known = set(
                session.scalars(
                    select(PredictionRow.request_id).where(
                        PredictionRow.model_id == row.id,
                        PredictionRow.request_id.in_(list(wanted)),
                    )
                )
            )
            now = _now()
            matched = unmatched = 0
            for request_id, value in items:
                if request_id in known:
                    session.merge(
                        FeedbackRow(
                            model_id=row.id, request_id=request_id, value=value, created_at=now
                        )
                    )
                    matched += 1
                else:
                    unmatched += 1
            return matched, unmatched

    def feedback_pairs(
        self, model: str, since: datetime | None = None
    ) -> dict[int, list[tuple[dict[str, Any], Any]]]:
        """Per version, (recorded prediction, ground truth) for feedback newer than ``since``."""
        with self._sessions.read() as session:
            row = self._catalog._require_model(session, model)  # noqa: SLF001
            query = (
                select(PredictionRow.version, PredictionRow.prediction, FeedbackRow.value)
                .join(
                    FeedbackRow,
                    (FeedbackRow.model_id == PredictionRow.model_id)
                    & (FeedbackRow.request_id == PredictionRow.request_id),
                )
                .where(PredictionRow.model_id == row.id)
                .order_by(PredictionRow.version, FeedbackRow.created_at, FeedbackRow.request_id)
            )
            if since is not None:
                query = query.where(FeedbackRow.created_at >= since)
            pairs: dict[int, list[tuple[dict[str, Any], Any]]] = {}
            for version, prediction, value in session.execute(query):
                pairs.setdefault(version, []).append((prediction, value))
            return pairs

    def prune_predictions(self, before: datetime) -> int:
        """Forget predictions and feedback older than ``before`` (retention)."""
        with self._sessions.write() as session:
            gone = session.execute(delete(PredictionRow).where(PredictionRow.created_at < before))
            session.execute(delete(FeedbackRow).where(FeedbackRow.created_at < before))
            return int(getattr(gone, "rowcount", 0) or 0)
