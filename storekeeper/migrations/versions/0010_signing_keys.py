"""Accounts: several token-signing keys (rotate, retire) and the key each session's tokens use.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 16:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts_signing_key",
        sa.Column("kid", sa.String(length=32), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_accounts_signing_key")),
    )
    with op.batch_alter_table("accounts_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts_session", schema=None) as batch_op:
        batch_op.drop_column("key_id")
    op.drop_table("accounts_signing_key")
