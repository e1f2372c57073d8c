"""Recorded predictions and their feedback (ground truth by request id), part of
``store.rollouts``. They are data, not configuration: written in batches without audit events."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from control_plane.catalog.orm import FeedbackRow, ModelRow, PredictionRow
from control_plane.catalog.verb_group import VerbGroup, utc_now

MAX_REQUEST_ID_LENGTH = 128


class PredictionVerbs(VerbGroup):
    def record_predictions(self, records: Iterable[Any]) -> int:
        """Store recorded predictions (``gateway.prediction_log.PredictionRecord``-like);
        unknown models are skipped, a request id seen twice for one version is kept once."""
        by_model: dict[str, list[Any]] = {}
        for record in records:
            by_model.setdefault(record.model, []).append(record)
        if not by_model:
            return 0
        now, stored = utc_now(), 0
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
            now = utc_now()
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
