"""sign-in throttles: refusals tallied per user name and address; failures by pair

Revision ID: 7d8e976b781d
Revises: d4e0f6b8a215
Create Date: 2026-12-07 15:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7d8e976b781d"
down_revision: str | Sequence[str] | None = "d4e0f6b8a215"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Refused (throttled) sign-in attempts are counted here, one row per open throttle, and
    # audited once when it opens and once when it ends.
    op.create_table(
        "login_throttle",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username_key", sa.String(length=64), nullable=False),
        sa.Column("client_addr", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_throttle")),
        sa.UniqueConstraint(
            "username_key", "client_addr", name=op.f("uq_login_throttle_username_key")
        ),
    )
    # Failures are counted per (user name, address) pair now, and cleared per user name.
    op.create_index(
        "ix_login_failure_username_key_client_addr_at",
        "login_failure",
        ["username_key", "client_addr", "at"],
    )
    op.drop_index("ix_login_failure_username_key_at", table_name="login_failure")


def downgrade() -> None:
    op.create_index("ix_login_failure_username_key_at", "login_failure", ["username_key", "at"])
    op.drop_index("ix_login_failure_username_key_client_addr_at", table_name="login_failure")
    op.drop_table("login_throttle")
