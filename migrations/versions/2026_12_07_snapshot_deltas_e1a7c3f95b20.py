"""snapshot deltas: a full snapshot now and then, in between only what changed

Revision ID: e1a7c3f95b20
Revises: 5b9c2e7d4f61
Create Date: 2026-12-07 16:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.session.snapshot_delta import Parts, Stored, rebuild

revision: str = "e1a7c3f95b20"
down_revision: str | Sequence[str] | None = "5b9c2e7d4f61"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KIND_BASE = "kind = 'full' AND base_seq IS NULL OR kind = 'delta' AND base_seq IS NOT NULL"

SNAPSHOT = sa.table(
    "session_snapshot",
    sa.column("session_id", sa.Integer()),
    sa.column("seq", sa.Integer()),
    sa.column("kind", sa.String()),
    sa.column("base_seq", sa.Integer()),
    sa.column("state_json", sa.Text()),
    sa.column("alarms_json", sa.Text()),
    sa.column("thresholds_json", sa.Text()),
)


def upgrade() -> None:
    # The snapshots already kept are full ones: they stay valid as they are.
    with op.batch_alter_table("session_snapshot", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=10), server_default="full", nullable=False)
        )
        batch_op.add_column(sa.Column("base_seq", sa.Integer(), nullable=True))
        batch_op.create_check_constraint(batch_op.f("ck_session_snapshot_kind_base"), KIND_BASE)
    # A plain ALTER, not a batch copy: on SQLite the copy would drop a table other rows refer to.
    op.add_column(
        "desensitization_session",
        sa.Column("snapshot_stale", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    # Whether a session's row still equals its last snapshot is not known here: each one's next
    # snapshot is kept whole.
    op.execute(sa.text("UPDATE desensitization_session SET snapshot_stale = true"))


def downgrade() -> None:
    # Every delta rebuilt into the full snapshot it stands for, session by session.
    bind = op.get_bind()
    sessions = bind.execute(
        sa.select(SNAPSHOT.c.session_id).where(SNAPSHOT.c.kind == "delta").distinct()
    ).scalars()
    for session_id in list(sessions):
        rows = bind.execute(
            sa.select(SNAPSHOT).where(SNAPSHOT.c.session_id == session_id).order_by(SNAPSHOT.c.seq)
        ).all()
        stored = [
            Stored(r.seq, r.kind, r.base_seq, Parts(r.state_json, r.alarms_json, r.thresholds_json))
            for r in rows
        ]
        for row, (seq, parts) in zip(stored, rebuild(stored), strict=True):
            if row.kind == "full":
                continue
            bind.execute(
                sa.update(SNAPSHOT)
                .where(SNAPSHOT.c.session_id == session_id, SNAPSHOT.c.seq == seq)
                .values(
                    kind="full",
                    base_seq=None,
                    state_json=parts.state,
                    alarms_json=parts.alarms,
                    thresholds_json=parts.thresholds,
                )
            )
    op.drop_column("desensitization_session", "snapshot_stale")
    with op.batch_alter_table("session_snapshot", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_session_snapshot_kind_base"), type_="check")
        batch_op.drop_column("base_seq")
        batch_op.drop_column("kind")
