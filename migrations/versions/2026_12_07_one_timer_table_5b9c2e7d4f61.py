"""one timer table: step, escalation and alarm-check timers in `timer`, told apart by kind

Revision ID: 5b9c2e7d4f61
Revises: 7d8e976b781d
Create Date: 2026-12-07 12:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b9c2e7d4f61"
down_revision: str | Sequence[str] | None = "7d8e976b781d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KIND_KEYS = (
    "kind = 'step' AND generation IS NOT NULL AND alarm_number IS NULL"
    " OR kind = 'escalation' AND alarm_number IS NOT NULL AND generation IS NULL"
    " OR kind = 'alarm_check' AND generation IS NULL AND alarm_number IS NULL"
)

# Each old table's rows, pending, fired and cancelled alike, in their old order.
COPY_IN = (
    "INSERT INTO timer"
    " (session_id, kind, generation, due_at, status, fired_at, late_seconds)"
    " SELECT session_id, 'step', generation, due_at, status, fired_at, late_seconds"
    " FROM session_timer ORDER BY id",
    "INSERT INTO timer (session_id, kind, alarm_number, due_at, status, fired_at)"
    " SELECT session_id, 'escalation', alarm_number, due_at, status, fired_at"
    " FROM alarm_timer ORDER BY id",
    "INSERT INTO timer (session_id, kind, due_at, status, fired_at)"
    " SELECT session_id, 'alarm_check', due_at, status, fired_at"
    " FROM alarm_check_timer ORDER BY id",
)
COPY_OUT = (
    "INSERT INTO session_timer (session_id, generation, due_at, status, fired_at, late_seconds)"
    " SELECT session_id, generation, due_at, status, fired_at, late_seconds"
    " FROM timer WHERE kind = 'step' ORDER BY id",
    "INSERT INTO alarm_timer (session_id, alarm_number, due_at, status, fired_at)"
    " SELECT session_id, alarm_number, due_at, status, fired_at"
    " FROM timer WHERE kind = 'escalation' ORDER BY id",
    "INSERT INTO alarm_check_timer (session_id, due_at, status, fired_at)"
    " SELECT session_id, due_at, status, fired_at"
    " FROM timer WHERE kind = 'alarm_check' ORDER BY id",
)


def _session_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["session_id"],
        ["desensitization_session.id"],
        name=op.f(f"fk_{table}_session_id_desensitization_session"),
    )


def upgrade() -> None:
    op.create_table(
        "timer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=True),
        sa.Column("alarm_number", sa.Integer(), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("late_seconds", sa.String(length=80), nullable=True),
        sa.CheckConstraint(KIND_KEYS, name=op.f("ck_timer_kind_keys")),
        _session_fk("timer"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timer")),
        sa.UniqueConstraint(
            "session_id", "alarm_number", name=op.f("uq_timer_session_id_alarm_number")
        ),
        sa.UniqueConstraint(
            "session_id", "generation", name=op.f("uq_timer_session_id_generation")
        ),
    )
    op.create_index("ix_timer_status_due_at", "timer", ["status", "due_at"], unique=False)
    for statement in COPY_IN:
        op.execute(statement)
    for table in ("session_timer", "alarm_timer", "alarm_check_timer"):
        op.drop_index(f"ix_{table}_status_due_at", table_name=table)
        op.drop_table(table)


def downgrade() -> None:
    op.create_table(
        "session_timer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("late_seconds", sa.String(length=80), nullable=True),
        _session_fk("session_timer"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_timer")),
        sa.UniqueConstraint("session_id", "generation", name=op.f("uq_session_timer_session_id")),
    )
    op.create_table(
        "alarm_timer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("alarm_number", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=True),
        _session_fk("alarm_timer"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm_timer")),
        sa.UniqueConstraint("session_id", "alarm_number", name=op.f("uq_alarm_timer_session_id")),
    )
    op.create_table(
        "alarm_check_timer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=True),
        _session_fk("alarm_check_timer"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm_check_timer")),
    )
    for table in ("session_timer", "alarm_timer", "alarm_check_timer"):
        op.create_index(f"ix_{table}_status_due_at", table, ["status", "due_at"], unique=False)
    for statement in COPY_OUT:
        op.execute(statement)
    op.drop_index("ix_timer_status_due_at", table_name="timer")
    op.drop_table("timer")
