"""Events: a record of restores from backups, whose newest generation sync cursors must carry.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 17:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events_restore",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("generation", sa.String(length=32), nullable=False),
        sa.Column("restored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("backup_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("backup_point", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events_restore")),
    )


def downgrade() -> None:
    op.drop_table("events_restore")
