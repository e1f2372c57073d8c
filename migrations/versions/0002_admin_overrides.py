"""Admin API state: models registered through it, per-version load/unload pins.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-23

`models.admin_registered` lets the reconciler serve models added through the admin API after a
restart; `model_versions.pin` records an operator's load/unload override of the version policy.
Literal names only (no ORM imports). Batch mode so SQLite can add the check constraint.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PINS = "'load', 'unload'"


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(
            sa.Column("admin_registered", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("pin", sa.String(length=16), nullable=True))
        batch.create_check_constraint(op.f("ck_model_versions_pin"), f"pin IN ({PINS})")


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_constraint(op.f("ck_model_versions_pin"), type_="check")
        batch.drop_column("pin")
    with op.batch_alter_table("models") as batch:
        batch.drop_column("admin_registered")
