"""session place, assigned nurse and diluent

Revision ID: d4e0f6b8a215
Revises: c3d9e5a7f104
Create Date: 2026-12-07 12:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d4e0f6b8a215"
down_revision: str | Sequence[str] | None = "c3d9e5a7f104"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Where the patient sits and who nurses them: read across the room on the board. The
    # diluent: on the bag recipe the pharmacist verifies (some drugs need glucose, not saline).
    with op.batch_alter_table("desensitization_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("location", sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column("assigned_nurse_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "diluent",
                sa.String(length=120),
                server_default="0.9 % sodium chloride",
                nullable=False,
            )
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_desensitization_session_assigned_nurse_id_app_user"),
            "app_user",
            ["assigned_nurse_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("desensitization_session", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_desensitization_session_assigned_nurse_id_app_user"),
            type_="foreignkey",
        )
        batch_op.drop_column("diluent")
        batch_op.drop_column("assigned_nurse_id")
        batch_op.drop_column("location")
