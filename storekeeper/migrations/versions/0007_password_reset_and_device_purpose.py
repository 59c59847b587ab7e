"""Accounts: single-use password-reset tokens (hashes only), and a purpose for device tokens
(`sensor` | `till`; NULL for tokens issued before, which keep what they could do).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 10:52:33.908355
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "accounts_password_reset",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["accounts_user.id"],
            name=op.f("fk_accounts_password_reset_user_id_accounts_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts_password_reset")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_accounts_password_reset_token_hash")),
    )
    with op.batch_alter_table("accounts_password_reset", schema=None) as batch_op:
        batch_op.create_index("ix_accounts_password_reset_user", ["user_id"], unique=False)

    with op.batch_alter_table("accounts_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purpose", sa.String(length=16), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("accounts_session", schema=None) as batch_op:
        batch_op.drop_column("purpose")

    with op.batch_alter_table("accounts_password_reset", schema=None) as batch_op:
        batch_op.drop_index("ix_accounts_password_reset_user")

    op.drop_table("accounts_password_reset")
