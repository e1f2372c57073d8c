"""Rollouts and model quality: traffic over labels, shadows, rollouts, thresholds, predictions
recorded for feedback, and the feedback itself.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Literal table and constraint names only (no ORM imports), so this keeps producing one schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLLOUT_STATES = "'running', 'completed', 'rolled_back', 'aborted'"


def _model_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["model_id"], ["models.id"], name=op.f(f"fk_{table}_model_id_models"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "label_traffic",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.CheckConstraint("weight >= 0", name=op.f("ck_label_traffic_weight_non_negative")),
        _model_fk("label_traffic"),
        sa.PrimaryKeyConstraint("model_id", "label", name=op.f("pk_label_traffic")),
    )
    op.create_table(
        "shadows",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("percent", sa.Float(), nullable=False),
        sa.Column("tolerance", sa.Float(), nullable=False),
        sa.CheckConstraint("percent > 0 AND percent <= 100", name=op.f("ck_shadows_percent_range")),
        sa.ForeignKeyConstraint(
            ["model_id", "version"],
            ["model_versions.model_id", "model_versions.version"],
            name=op.f("fk_shadows_model_id_version_model_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_id", name=op.f("pk_shadows")),
    )
    op.create_table(
        "model_thresholds",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        _model_fk("model_thresholds"),
        sa.PrimaryKeyConstraint("model_id", name=op.f("pk_model_thresholds")),
    )
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("candidate", sa.BigInteger(), nullable=False),
        sa.Column("baseline", sa.BigInteger(), nullable=True),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("interval_seconds", sa.Float(), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("step_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(f"state IN ({ROLLOUT_STATES})", name=op.f("ck_rollouts_state")),
        _model_fk("rollouts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollouts")),
    )
    op.create_index("ix_rollouts_model_id", "rollouts", ["model_id", "id"])
    op.create_table(
        "predictions",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("prediction", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _model_fk("predictions"),
        sa.PrimaryKeyConstraint("model_id", "request_id", "version", name=op.f("pk_predictions")),
    )
    op.create_index("ix_predictions_created_at", "predictions", ["created_at"])
    op.create_table(
        "feedback",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _model_fk("feedback"),
        sa.PrimaryKeyConstraint("model_id", "request_id", name=op.f("pk_feedback")),
    )
    op.create_index("ix_feedback_created_at", "feedback", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_feedback_created_at", table_name="feedback")
    op.drop_table("feedback")
    op.drop_index("ix_predictions_created_at", table_name="predictions")
    op.drop_table("predictions")
    op.drop_index("ix_rollouts_model_id", table_name="rollouts")
    op.drop_table("rollouts")
    op.drop_table("model_thresholds")
    op.drop_table("shadows")
    op.drop_table("label_traffic")
