"""Bag labels: one row per printed label, reprints numbered, a reprint voiding the label it
replaces.

Revision ID: a9c1e3f5b702
Revises: f2b8d4a06c31
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a9c1e3f5b702"
down_revision: str | Sequence[str] | None = "f2b8d4a06c31"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bag_label",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("bag", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("copy", sa.Integer(), nullable=False),
        sa.Column("printed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("printed_by", sa.Integer(), nullable=True),
        sa.Column("prepared_by", sa.Integer(), nullable=True),
        sa.Column("prepared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["desensitization_session.id"],
            name=op.f("fk_bag_label_session_id_desensitization_session"),
        ),
        sa.ForeignKeyConstraint(
            ["printed_by"], ["app_user.id"], name=op.f("fk_bag_label_printed_by_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["prepared_by"], ["app_user.id"], name=op.f("fk_bag_label_prepared_by_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bag_label")),
        sa.UniqueConstraint("code", name=op.f("uq_bag_label_code")),
        sa.UniqueConstraint("session_id", "bag", "copy", name=op.f("uq_bag_label_session_id")),
    )
    op.create_index("ix_bag_label_session_id_bag", "bag_label", ["session_id", "bag"])


def downgrade() -> None:
    op.drop_index("ix_bag_label_session_id_bag", table_name="bag_label")
    op.drop_table("bag_label")
