"""Alarm check timers: when a session's technical alarms next need a look.

Revision ID: a4c7e2d9f318
Revises: f2b8d6e4a013
Create Date: 2026-11-21 12:31:15.079452+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a4c7e2d9f318"
down_revision: str | Sequence[str] | None = "f2b8d6e4a013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alarm_check_timer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["desensitization_session.id"],
            name=op.f("fk_alarm_check_timer_session_id_desensitization_session"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm_check_timer")),
    )
    with op.batch_alter_table("alarm_check_timer", schema=None) as batch_op:
        batch_op.create_index(
            "ix_alarm_check_timer_status_due_at", ["status", "due_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("alarm_check_timer", schema=None) as batch_op:
        batch_op.drop_index("ix_alarm_check_timer_status_due_at")

    op.drop_table("alarm_check_timer")
