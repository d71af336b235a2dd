"""reaction findings and outcome; bedside presence; open alarms by condition

Revision ID: c3d9e5a7f104
Revises: b8e1d4f6a027
Create Date: 2026-12-07 09:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c3d9e5a7f104"
down_revision: str | Sequence[str] | None = "b8e1d4f6a027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Clinical findings in words, kept apart from the symptoms, and how the reaction ended.
    with op.batch_alter_table("session_reaction", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("findings_json", sa.Text(), server_default="[]", nullable=False)
        )
        batch_op.add_column(sa.Column("outcome", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("closed_by_abort", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    # Which process has bedside screens open for which session, and since when it last said
    # so: "lost contact" is a running session nobody's screen has shown for minutes.
    op.create_table(
        "bedside_presence",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("process", sa.String(length=80), nullable=False),
        sa.Column("screens", sa.Integer(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["desensitization_session.id"],
            name=op.f("fk_bedside_presence_session_id_desensitization_session"),
        ),
        sa.PrimaryKeyConstraint("session_id", "process", name=op.f("pk_bedside_presence")),
    )
    with op.batch_alter_table("session_alarm", schema=None) as batch_op:
        batch_op.create_index(
            "ix_session_alarm_condition_cleared_at", ["condition", "cleared_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("session_alarm", schema=None) as batch_op:
        batch_op.drop_index("ix_session_alarm_condition_cleared_at")
    op.drop_table("bedside_presence")
    with op.batch_alter_table("session_reaction", schema=None) as batch_op:
        batch_op.drop_column("closed_by_abort")
        batch_op.drop_column("outcome")
        batch_op.drop_column("findings_json")
