"""The routing feed: the routing table as gateways in other processes read it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

One row (id 1): ``version`` counts publishes, ``payload`` is the table's JSON with the Triton
instances (``tfsgate/core/routing_feed.py``). Literal names only (no ORM imports).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "routing_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_state")),
    )


def downgrade() -> None:
    op.drop_table("routing_state")
