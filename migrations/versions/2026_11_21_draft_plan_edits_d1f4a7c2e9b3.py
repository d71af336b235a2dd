"""draft plan edits

Revision ID: d1f4a7c2e9b3
Revises: b5e2d8a41c63
Create Date: 2026-11-21 11:20:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d1f4a7c2e9b3"
down_revision: str | Sequence[str] | None = "b5e2d8a41c63"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("desensitization_session") as batch_op:
        batch_op.add_column(
            sa.Column("plan_edits_json", sa.Text(), nullable=False, server_default="[]")
        )


def downgrade() -> None:
    with op.batch_alter_table("desensitization_session") as batch_op:
        batch_op.drop_column("plan_edits_json")
