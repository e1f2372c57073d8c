"""The engine's evidence and settings: which runner serves each signature and why, warm-up.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

`models.runner` (auto | tensorflow | onnxruntime) forces a runner for every signature of a model;
`models.response_cache` turns on Triton's response cache for it. `model_versions.runners` holds,
per signature, the runner chosen and its evidence (max_abs_error, fallback_reason, parity_cases)
and the setting it was converted under; `warmup_records`/`warmup_seconds` what the warm-up replay
did before the version became AVAILABLE. Literal names only (no ORM imports); batch mode so SQLite
can add the check constraint.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUNNERS = "'auto', 'tensorflow', 'onnxruntime'"


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(
            sa.Column("runner", sa.String(length=16), server_default="auto", nullable=False)
        )
        batch.add_column(
            sa.Column("response_cache", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.create_check_constraint(op.f("ck_models_runner"), f"runner IN ({RUNNERS})")
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("runners", sa.JSON(), server_default="{}", nullable=False))
        batch.add_column(sa.Column("warmup_records", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("warmup_seconds", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("warmup_seconds")
        batch.drop_column("warmup_records")
        batch.drop_column("runners")
    with op.batch_alter_table("models") as batch:
        batch.drop_constraint(op.f("ck_models_runner"), type_="check")
        batch.drop_column("response_cache")
        batch.drop_column("runner")
