"""An index on vitals_set (session_id, id): the views' window of the newest sets and the
snapshot's newest set id are read through it, whatever the length of the history.

Revision ID: f2b8d4a06c31
Revises: e1a7c3f95b20
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "f2b8d4a06c31"
down_revision: str | Sequence[str] | None = "e1a7c3f95b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_vitals_set_session_id_id", "vitals_set", ["session_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_vitals_set_session_id_id", table_name="vitals_set")
