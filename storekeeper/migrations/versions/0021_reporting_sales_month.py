"""Reporting: each closed period's sales summed per series and currency
(``reporting_sales_month``), so that the sales report and ABC over a long period sum a dozen rows
per series instead of every sale (bench W9). Filled for the periods already closed.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 21:40:00.000000
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

_movement = sa.table(
    "reporting_movement",
    sa.column("sku", sa.String()),
    sa.column("warehouse", sa.String()),
    sa.column("delta", sa.BigInteger()),
    sa.column("reason", sa.String()),
    sa.column("sale_value_cents", sa.BigInteger()),
    sa.column("currency", sa.String()),
    sa.column("moved_at", sa.DateTime(timezone=True)),
)
_period = sa.table("reporting_period", sa.column("ends_on", sa.Date()))
_sales_month = sa.table(
    "reporting_sales_month",
    sa.column("sku", sa.String()),
    sa.column("warehouse", sa.String()),
    sa.column("currency", sa.String()),
    sa.column("ends_on", sa.Date()),
    sa.column("units", sa.BigInteger()),
    sa.column("value_cents", sa.BigInteger()),
)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def upgrade() -> None:
    op.create_table(
        "reporting_sales_month",
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("warehouse", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.Column("value_cents", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ends_on"],
            ["reporting_period.ends_on"],
            name=op.f("fk_reporting_sales_month_ends_on_reporting_period"),
        ),
        sa.PrimaryKeyConstraint(
            "sku", "warehouse", "currency", "ends_on", name=op.f("pk_reporting_sales_month")
        ),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("reporting_sales_month", schema=None) as batch_op:
        batch_op.create_index("ix_reporting_sales_month_ends_on", ["ends_on"], unique=False)
    # The periods closed so far: their sales, as closing them now would sum them
    # (storekeeper.reporting.balances._close_sales).
    bind = op.get_bind()
    currency = sa.func.coalesce(_movement.c.currency, "")
    for (ends_on,) in bind.execute(sa.select(_period.c.ends_on).order_by(_period.c.ends_on)):
        starts_on = (ends_on - timedelta(days=1)).replace(day=1)
        sums = (
            sa.select(
                _movement.c.sku,
                _movement.c.warehouse,
                currency,
                sa.literal(ends_on, sa.Date()),
                sa.func.sum(-_movement.c.delta),
                sa.func.coalesce(sa.func.sum(_movement.c.sale_value_cents), 0),
            )
            .where(
                _movement.c.reason == "sale",
                _movement.c.moved_at >= _midnight(starts_on),
                _movement.c.moved_at < _midnight(ends_on),
            )
            .group_by(_movement.c.sku, _movement.c.warehouse, currency)
        )
        columns = ["sku", "warehouse", "currency", "ends_on", "units", "value_cents"]
        bind.execute(sa.insert(_sales_month).from_select(columns, sums))


def downgrade() -> None:
    with op.batch_alter_table("reporting_sales_month", schema=None) as batch_op:
        batch_op.drop_index("ix_reporting_sales_month_ends_on")
    op.drop_table("reporting_sales_month")
