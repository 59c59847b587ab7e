"""Inventory: reservations may expire (gRPC and HTTP ``ttl_s``), released by a sweeper.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 17:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inventory_reservation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_inventory_reservation_expiry"), ["status", "expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("inventory_reservation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inventory_reservation_expiry"))
        batch_op.drop_column("expires_at")
