"""Reporting: the demand forecast's reorder point per (SKU, warehouse). A new table only.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 16:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reporting_reorder_point",
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("warehouse", sa.String(length=32), nullable=False),
        sa.Column("reorder_point", sa.BigInteger(), nullable=False),
        sa.Column("safety_stock", sa.BigInteger(), nullable=False),
        sa.Column("forecast_daily", sa.Float(), nullable=False),
        sa.Column("mae", sa.Float(), nullable=True),
        sa.Column("mase", sa.Float(), nullable=True),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("service_level", sa.Float(), nullable=False),
        sa.Column("lead_time_days", sa.Integer(), nullable=False),
        sa.Column("censored_days", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sku", "warehouse", name=op.f("pk_reporting_reorder_point")),
    )
    with op.batch_alter_table("reporting_reorder_point", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reporting_reorder_point_warehouse", ["warehouse", "sku"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("reporting_reorder_point", schema=None) as batch_op:
        batch_op.drop_index("ix_reporting_reorder_point_warehouse")
    op.drop_table("reporting_reorder_point")
