"""patients

Revision ID: 9a1f3c5e7b20
Revises: 7d4b2e6c1a55
Create Date: 2026-11-21 12:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9a1f3c5e7b20"
down_revision: str | Sequence[str] | None = "7d4b2e6c1a55"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "patient",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mrn", sa.String(length=32), nullable=False),
        sa.Column("family_name", sa.String(length=100), nullable=False),
        sa.Column("given_name", sa.String(length=100), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("sex", sa.String(length=10), nullable=True),
        sa.Column("weight_kg", sa.Numeric(precision=6, scale=2), nullable=False),
        sa.Column("asthma", sa.Boolean(), nullable=False),
        sa.Column("allergy_history", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "weight_kg >= 0.3 AND weight_kg <= 400", name=op.f("ck_patient_weight_kg_range")
        ),
        sa.CheckConstraint(
            "sex IS NULL OR sex IN ('female', 'male', 'other', 'unknown')",
            name=op.f("ck_patient_sex_known"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["app_user.id"], name=op.f("fk_patient_created_by_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient")),
        sa.UniqueConstraint("mrn", name=op.f("uq_patient_mrn")),
    )


def downgrade() -> None:
    op.drop_table("patient")
