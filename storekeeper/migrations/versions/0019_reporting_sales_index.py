"""Reporting: a covering index of the sales in series order, so that SQLite (which has no hash
aggregate) sums a long period's sales per product or warehouse in one pass over the index
instead of sorting every sale row of the period (bench W9).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 19:20:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_COLUMNS = ["reason", "sku", "warehouse", "currency", "moved_at", "delta", "sale_value_cents"]


def upgrade() -> None:
    with op.batch_alter_table("reporting_movement", schema=None) as batch_op:
        batch_op.create_index("ix_reporting_movement_sales", _COLUMNS, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reporting_movement", schema=None) as batch_op:
        batch_op.drop_index("ix_reporting_movement_sales")
