"""Events: the transactions whose outbox rows pruning deleted, so that a sync cursor or live
position is refused only when it had one of them in progress (PostgreSQL).

Prunings before this revision recorded none, so ``xids_from`` starts at this transaction's id
there: a position taken before it that had a transaction in progress below the horizon is
refused, as it always was.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 21:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events_pruned_xid",
        sa.Column("xid", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("pruned_by", sa.BigInteger(), nullable=False),
        sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("xid", name=op.f("pk_events_pruned_xid")),
    )
    op.create_index(
        "ix_events_pruned_xid_pruned_at", "events_pruned_xid", ["pruned_at"], unique=False
    )
    with op.batch_alter_table("events_retention", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("xids_from", sa.BigInteger(), server_default="0", nullable=False)
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE events_retention SET xids_from = pg_current_xact_id()::text::bigint")


def downgrade() -> None:
    with op.batch_alter_table("events_retention", schema=None) as batch_op:
        batch_op.drop_column("xids_from")
    op.drop_index("ix_events_pruned_xid_pruned_at", table_name="events_pruned_xid")
    op.drop_table("events_pruned_xid")
