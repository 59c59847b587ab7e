"""Events: per-(consumer, event) delivery failures, retried with backoff and then parked.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 16:31:23.961799
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events_delivery_failure",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("consumer", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("aggregate_type", sa.String(length=32), nullable=False),
        sa.Column("aggregate_id", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.String(length=16), nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events_delivery_failure")),
        sa.UniqueConstraint(
            "consumer", "event_id", name=op.f("uq_events_delivery_failure_consumer")
        ),
    )
    with op.batch_alter_table("events_delivery_failure", schema=None) as batch_op:
        batch_op.create_index(
            "ix_events_delivery_failure_aggregate",
            ["consumer", "aggregate_type", "aggregate_id", "resolved_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_events_delivery_failure_due", ["resolved_at", "next_attempt_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("events_delivery_failure", schema=None) as batch_op:
        batch_op.drop_index("ix_events_delivery_failure_due")
        batch_op.drop_index("ix_events_delivery_failure_aggregate")
    op.drop_table("events_delivery_failure")
