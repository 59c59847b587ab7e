"""Retention: orders keep their own status times (their events get pruned), and the outbox
records how far it was pruned.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 17:20:00.000000
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_STEPS = {
    "order.confirmed": "confirmed_at",
    "order.cancelled": "cancelled_at",
    "order.shipped": "shipped_at",
}


def upgrade() -> None:
    with op.batch_alter_table("ordering_order", schema=None) as batch_op:
        for column in _STEPS.values():
            batch_op.add_column(sa.Column(column, sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "events_retention",
        sa.Column("log", sa.String(length=32), nullable=False),
        sa.Column("pruned_below", sa.BigInteger(), nullable=False),
        sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("log", name=op.f("pk_events_retention")),
    )
    _backfill_status_times()


def _backfill_status_times() -> None:
    """Each order's status times from the events it published (all still in the outbox)."""
    bind = op.get_bind()
    outbox = sa.table(
        "events_outbox",
        sa.column("id", sa.BigInteger),
        sa.column("type", sa.String),
        sa.column("aggregate_type", sa.String),
        sa.column("aggregate_id", sa.String),
        sa.column("occurred_at", sa.DateTime(timezone=True)),
    )
    orders = sa.table(
        "ordering_order",
        sa.column("id", sa.Uuid),
        *(sa.column(column, sa.DateTime(timezone=True)) for column in _STEPS.values()),
    )
    rows = bind.execute(
        sa.select(outbox.c.type, outbox.c.aggregate_id, outbox.c.occurred_at)
        .where(outbox.c.aggregate_type == "order", outbox.c.type.in_(list(_STEPS)))
        .order_by(outbox.c.id)
    )
    times: dict[uuid.UUID, dict[str, object]] = {}
    for event_type, aggregate_id, occurred_at in rows:
        times.setdefault(uuid.UUID(aggregate_id), {}).setdefault(_STEPS[event_type], occurred_at)
    for order_id, values in times.items():
        bind.execute(orders.update().where(orders.c.id == order_id).values(**values))


def downgrade() -> None:
    op.drop_table("events_retention")
    with op.batch_alter_table("ordering_order", schema=None) as batch_op:
        for column in _STEPS.values():
            batch_op.drop_column(column)
