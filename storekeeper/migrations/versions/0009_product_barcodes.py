"""Catalog: product barcodes (EAN-13, UPC-A, EAN-8, Code 128), one row per code, a code unique
across all products. Existing products get none.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalog_barcode",
        sa.Column("code", sa.String(length=48), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["sku"],
            ["catalog_product.sku"],
            name=op.f("fk_catalog_barcode_sku_catalog_product"),
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_catalog_barcode")),
    )
    with op.batch_alter_table("catalog_barcode", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_catalog_barcode_sku"), ["sku"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("catalog_barcode", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalog_barcode_sku"))
    op.drop_table("catalog_barcode")
