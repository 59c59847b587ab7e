"""Sync exceptions: how each was resolved (`accept_loss`, `correct_count`, `attach_receipt`),
with the count entered or the receipt movement the missing units came from. Exceptions resolved
before keep NULL (a note only).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:

    with op.batch_alter_table("sync_exception", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resolution", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("counted", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("receipt_id", sa.BigInteger(), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_sync_exception_resolution_known"),
            "resolution IS NULL OR resolution IN ('accept_loss', 'correct_count', "
            "'attach_receipt')",
        )


def downgrade() -> None:

    with op.batch_alter_table("sync_exception", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_sync_exception_resolution_known"), type_="check")
        batch_op.drop_column("receipt_id")
        batch_op.drop_column("counted")
        batch_op.drop_column("resolution")
