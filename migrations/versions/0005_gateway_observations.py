"""Gateway observations: what every gateway process saw, for the rollout guard and the shadow
summary in the control plane.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

`gateway_version_seconds`: per gateway, (model, version) and wall-clock second, requests, errors
and a latency histogram (kept for the guard's horizon, then pruned). `gateway_shadow_totals`:
per gateway, the running shadow comparison totals of (model, primary, shadow version). Model
names, not ids: gateways know names, and rows outlive nothing but their retention.
Literal names only (no ORM imports).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gateway_version_seconds",
        sa.Column("gateway", sa.String(length=255), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("second", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("histogram", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint(
            "gateway", "model", "version", "second", name=op.f("pk_gateway_version_seconds")
        ),
    )
    op.create_index(
        "ix_gateway_version_seconds_model_version_second",
        "gateway_version_seconds",
        ["model", "version", "second"],
    )
    op.create_index("ix_gateway_version_seconds_second", "gateway_version_seconds", ["second"])
    op.create_table(
        "gateway_shadow_totals",
        sa.Column("gateway", sa.String(length=255), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("primary_version", sa.BigInteger(), nullable=False),
        sa.Column("shadow_version", sa.BigInteger(), nullable=False),
        sa.Column("totals", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "gateway",
            "model",
            "primary_version",
            "shadow_version",
            name=op.f("pk_gateway_shadow_totals"),
        ),
    )


def downgrade() -> None:
    op.drop_table("gateway_shadow_totals")
    op.drop_index("ix_gateway_version_seconds_second", table_name="gateway_version_seconds")
    op.drop_index(
        "ix_gateway_version_seconds_model_version_second", table_name="gateway_version_seconds"
    )
    op.drop_table("gateway_version_seconds")
