"""Reporting: receipts carry an optional unit cost; the reporting context's read models of the
ledger (movements, latest levels) and its period snapshots (closing balances per month).

Existing movements are not copied here: ``storekeeper reports rebuild`` does it through the
inventory service, after the upgrade.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 16:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inventory_movement", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unit_cost_cents", sa.BigInteger(), nullable=True))
    op.create_table(
        "reporting_movement",
        sa.Column("movement_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("warehouse", sa.String(length=32), nullable=False),
        sa.Column("delta", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=128), nullable=True),
        sa.Column("unit_cost_cents", sa.BigInteger(), nullable=True),
        sa.Column("sale_value_cents", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("moved_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("movement_id", name=op.f("pk_reporting_movement")),
    )
    with op.batch_alter_table("reporting_movement", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reporting_movement_series",
            ["sku", "warehouse", "reason", "moved_at"],
            unique=False,
        )
        batch_op.create_index("ix_reporting_movement_moved_at", ["moved_at"], unique=False)
        batch_op.create_index("ix_reporting_movement_reason", ["reason", "moved_at"], unique=False)
        batch_op.create_index("ix_reporting_movement_ref", ["ref"], unique=False)
    op.create_table(
        "reporting_level",
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("warehouse", sa.String(length=32), nullable=False),
        sa.Column("on_hand", sa.BigInteger(), nullable=False),
        sa.Column("reserved", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sku", "warehouse", name=op.f("pk_reporting_level")),
    )
    op.create_table(
        "reporting_period",
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ends_on", name=op.f("pk_reporting_period")),
    )
    op.create_table(
        "reporting_snapshot",
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("warehouse", sa.String(length=32), nullable=False),
        sa.Column("on_hand", sa.BigInteger(), nullable=False),
        sa.Column("value_cents", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ends_on"],
            ["reporting_period.ends_on"],
            name=op.f("fk_reporting_snapshot_ends_on_reporting_period"),
        ),
        sa.PrimaryKeyConstraint("ends_on", "sku", "warehouse", name=op.f("pk_reporting_snapshot")),
    )


def downgrade() -> None:
    op.drop_table("reporting_snapshot")
    op.drop_table("reporting_period")
    op.drop_table("reporting_level")
    with op.batch_alter_table("reporting_movement", schema=None) as batch_op:
        batch_op.drop_index("ix_reporting_movement_ref")
        batch_op.drop_index("ix_reporting_movement_reason")
        batch_op.drop_index("ix_reporting_movement_moved_at")
        batch_op.drop_index("ix_reporting_movement_series")
    op.drop_table("reporting_movement")
    with op.batch_alter_table("inventory_movement", schema=None) as batch_op:
        batch_op.drop_column("unit_cost_cents")
