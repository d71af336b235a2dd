"""Session snapshots: the state after each change, for the timeline replay.

Revision ID: b8e1d4f6a027
Revises: a4c7e2d9f318
Create Date: 2026-11-21 13:22:53.206889+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b8e1d4f6a027"
down_revision: str | Sequence[str] | None = "a4c7e2d9f318"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "session_snapshot",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state_json", sa.Text(), nullable=False),
        sa.Column("alarms_json", sa.Text(), nullable=False),
        sa.Column("thresholds_json", sa.Text(), nullable=False),
        sa.Column("vitals_upto", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["desensitization_session.id"],
            name=op.f("fk_session_snapshot_session_id_desensitization_session"),
        ),
        sa.PrimaryKeyConstraint("session_id", "seq", name=op.f("pk_session_snapshot")),
    )


def downgrade() -> None:
    op.drop_table("session_snapshot")
