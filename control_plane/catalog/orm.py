"""SQLAlchemy ORM rows of the catalog.

Rows stay inside the store; each converts itself to a frozen entity with `to_entity()`. The
naming convention names every constraint so that migrations can refer to them by literal names
on both SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.expression import false

from control_plane.catalog.entities import (
    Event,
    Model,
    ModelVersion,
    Runner,
    VersionPin,
    VersionState,
)
from tfsgate.core.version_policy import VersionPolicy

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

STATE_VALUES = ", ".join(f"'{s.value}'" for s in VersionState)
PIN_VALUES = ", ".join(f"'{p.value}'" for p in VersionPin)
RUNNER_VALUES = ", ".join(f"'{r.value}'" for r in Runner)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    SQLite has no timezone type and hands back naive datetimes; we store naive UTC there and
    reattach UTC on the way out, so entities always carry aware datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class ModelRow(Base):
    __tablename__ = "models"
    __table_args__ = (CheckConstraint(f"runner IN ({RUNNER_VALUES})", name="runner"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    base_path: Mapped[str] = mapped_column(Text)
    version_policy: Mapped[dict[str, Any]]
    platform: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    admin_registered: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    runner: Mapped[str] = mapped_column(String(16), default="auto", server_default="auto")
    response_cache: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    def to_entity(self) -> Model:
        return model_entity(self)


class ModelVersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (
        CheckConstraint(f"state IN ({STATE_VALUES})", name="state"),
        CheckConstraint(f"pin IN ({PIN_VALUES})", name="pin"),
    )

    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    source_path: Mapped[str] = mapped_column(Text)
    checksum: Mapped[str] = mapped_column(String(128))
    signatures: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16))
    state_reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    pin: Mapped[str | None] = mapped_column(String(16))
    runners: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    warmup_records: Mapped[int | None] = mapped_column(Integer)
    warmup_seconds: Mapped[float | None] = mapped_column(Float)

    # Many-to-one, always joined: every entity needs the model name.
    model: Mapped[ModelRow] = relationship(lazy="joined", innerjoin=True)

    def to_entity(self) -> ModelVersion:
        return version_entity(self.model.name, self)


class LabelRow(Base):
    """A version label; the composite foreign key makes a dangling label impossible."""

    __tablename__ = "labels"
    __table_args__ = (
        ForeignKeyConstraint(
            ["model_id", "version"],
            ["model_versions.model_id", "model_versions.version"],
            ondelete="CASCADE",
        ),
    )

    model_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(255), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class TrafficRow(Base):
    """One weight of a model's traffic split; absent rows mean no split."""

    __tablename__ = "traffic"
    __table_args__ = (
        ForeignKeyConstraint(
            ["model_id", "version"],
            ["model_versions.model_id", "model_versions.version"],
            ondelete="CASCADE",
        ),
        CheckConstraint("weight >= 0", name="weight_non_negative"),
    )

    model_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    weight: Mapped[float] = mapped_column(Float)


class EventRow(Base):
    """Append-only audit log. `model` is the name, not a key, so history outlives deletes."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_model", "model", "id"),
        Index("ix_events_time", "time"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(255))
    version: Mapped[int | None] = mapped_column(BigInteger)
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]

    def to_entity(self) -> Event:
        return Event(
            id=self.id,
            time=self.time,
            actor=self.actor,
            action=self.action,
            model=self.model,
            version=self.version,
            before=self.before,
            after=self.after,
        )


# ---------------------------------------------------------------- rollouts and quality (0003)

ROLLOUT_STATE_VALUES = "'running', 'completed', 'rolled_back', 'aborted'"


class LabelTrafficRow(Base):
    """A traffic weight given to a label (stable 90, canary 10); resolved when published."""

    __tablename__ = "label_traffic"
    __table_args__ = (CheckConstraint("weight >= 0", name="weight_non_negative"),)

    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    label: Mapped[str] = mapped_column(String(255), primary_key=True)
    weight: Mapped[float] = mapped_column(Float)


class ShadowRow(Base):
    """The one shadow version of a model: ``percent`` of its traffic is copied to it."""

    __tablename__ = "shadows"
    __table_args__ = (
        ForeignKeyConstraint(
            ["model_id", "version"],
            ["model_versions.model_id", "model_versions.version"],
            ondelete="CASCADE",
        ),
        CheckConstraint("percent > 0 AND percent <= 100", name="percent_range"),
    )

    model_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    percent: Mapped[float] = mapped_column(Float)
    tolerance: Mapped[float] = mapped_column(Float)


class ThresholdsRow(Base):
    """A model's rollout guard thresholds (``control_plane.rollouts.guard.Thresholds`` JSON)."""

    __tablename__ = "model_thresholds"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    thresholds: Mapped[dict[str, Any]]


class RolloutRow(Base):
    __tablename__ = "rollouts"
    __table_args__ = (
        CheckConstraint(f"state IN ({ROLLOUT_STATE_VALUES})", name="state"),
        Index("ix_rollouts_model_id", "model_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    candidate: Mapped[int] = mapped_column(BigInteger)
    baseline: Mapped[int | None] = mapped_column(BigInteger)
    steps: Mapped[list[int]] = mapped_column(JSON)
    interval_seconds: Mapped[float] = mapped_column(Float)
    step_index: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime]
    step_started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class PredictionRow(Base):
    """One version's answer to one request, recorded for feedback (shadowed: two versions)."""

    __tablename__ = "predictions"
    __table_args__ = (Index("ix_predictions_created_at", "created_at"),)

    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    request_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    prediction: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class FeedbackRow(Base):
    """Ground truth for one request id."""

    __tablename__ = "feedback"
    __table_args__ = (Index("ix_feedback_created_at", "created_at"),)

    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    request_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[datetime]


# ---------------------------------------------------------------- gateway observations (0005)


class GatewayVersionSecondRow(Base):
    """One gateway's requests, errors and latency histogram for one (model, version) and
    wall-clock second, while the model is guarded (``tfsgate.core.observations``)."""

    __tablename__ = "gateway_version_seconds"
    __table_args__ = (
        Index("ix_gateway_version_seconds_model_version_second", "model", "version", "second"),
        Index("ix_gateway_version_seconds_second", "second"),
    )

    gateway: Mapped[str] = mapped_column(String(255), primary_key=True)
    model: Mapped[str] = mapped_column(String(255), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    second: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    requests: Mapped[int] = mapped_column(Integer)
    errors: Mapped[int] = mapped_column(Integer)
    histogram: Mapped[dict[str, Any]]  # latency bucket (as text) -> requests


class GatewayShadowRow(Base):
    """One gateway's running shadow comparison totals for (model, primary, shadow version)."""

    __tablename__ = "gateway_shadow_totals"

    gateway: Mapped[str] = mapped_column(String(255), primary_key=True)
    model: Mapped[str] = mapped_column(String(255), primary_key=True)
    primary_version: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    shadow_version: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    totals: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


# ---------------------------------------------------------------- routing feed (0006)


class RoutingStateRow(Base):
    """The routing feed's one row: read and written by ``tfsgate/core/routing_feed.py`` with
    SQLAlchemy Core (gateways import no control-plane code); declared here for the schema."""

    __tablename__ = "routing_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]


# Entities from a row: an ORM row or a plain result row of the same table's columns (the reads in
# ``SessionFactory.snapshot``), which carry the same attribute names.
def model_entity(row: Any) -> Model:
    return Model(
        name=row.name,
        base_path=row.base_path,
        policy=VersionPolicy.parse(row.version_policy),
        platform=row.platform,
        created_at=row.created_at,
        updated_at=row.updated_at,
        admin_registered=bool(row.admin_registered),
        runner=Runner(row.runner),
        response_cache=bool(row.response_cache),
    )


def version_entity(model: str, row: Any) -> ModelVersion:
    return ModelVersion(
        model=model,
        version=row.version,
        source_path=row.source_path,
        checksum=row.checksum,
        signatures=dict(row.signatures),
        state=VersionState(row.state),
        state_reason=row.state_reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
        pin=None if row.pin is None else VersionPin(row.pin),
        runners=dict(row.runners or {}),
        warmup_records=row.warmup_records,
        warmup_seconds=row.warmup_seconds,
    )
