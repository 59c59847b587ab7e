"""Imports: one row per import run of a products/stock file with its progress, and its file.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 16:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "imports_run",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("receipt_key", sa.String(length=160), nullable=True),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("stock_mode", sa.String(length=8), nullable=True),
        sa.Column("warehouse", sa.String(length=32), nullable=True),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imports_run")),
        sa.UniqueConstraint("receipt_key", name=op.f("uq_imports_run_receipt_key")),
    )
    with op.batch_alter_table("imports_run", schema=None) as batch_op:
        batch_op.create_index("ix_imports_run_key", ["key", "id"], unique=False)
    op.create_table(
        "imports_file",
        sa.Column(
            "run_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["imports_run.id"], name=op.f("fk_imports_file_run_id_imports_run")
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_imports_file")),
    )


def downgrade() -> None:
    op.drop_table("imports_file")
    with op.batch_alter_table("imports_run", schema=None) as batch_op:
        batch_op.drop_index("ix_imports_run_key")
    op.drop_table("imports_run")
