"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 05:48:24.951950
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts_user",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts_user")),
        sa.UniqueConstraint("email", name=op.f("uq_accounts_user_email")),
    )
    op.create_table(
        "catalog_product",
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("price_cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "attributes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("min_temp_c", sa.Double(), nullable=True),
        sa.Column("max_temp_c", sa.Double(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "min_temp_c IS NULL OR max_temp_c IS NULL OR min_temp_c <= max_temp_c",
            name=op.f("ck_catalog_product_temp_range_ordered"),
        ),
        sa.CheckConstraint("price_cents >= 0", name=op.f("ck_catalog_product_price_not_negative")),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_catalog_product")),
    )
    op.create_table(
        "events_outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("aggregate_type", sa.String(length=32), nullable=False),
        sa.Column("aggregate_id", sa.String(length=64), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_events_outbox_event_id")),
    )
    with op.batch_alter_table("events_outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_events_outbox_aggregate", ["aggregate_type", "aggregate_id", "id"], unique=False
        )
        batch_op.create_index("ix_events_outbox_unpublished", ["published_at", "id"], unique=False)

    op.create_table(
        "inventory_warehouse",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("lat", sa.Double(), nullable=False),
        sa.Column("lon", sa.Double(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("lat BETWEEN -90 AND 90", name=op.f("ck_inventory_warehouse_lat_range")),
        sa.CheckConstraint(
            "lon BETWEEN -180 AND 180", name=op.f("ck_inventory_warehouse_lon_range")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_inventory_warehouse")),
    )
    op.create_table(
        "ordering_idempotency",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column(
            "response",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_ordering_idempotency")),
    )
    op.create_table(
        "ordering_order",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.Column("ship_to_lat", sa.Double(), nullable=True),
        sa.Column("ship_to_lon", sa.Double(), nullable=True),
        sa.Column("payment_method", sa.String(length=16), nullable=False),
        sa.Column("payment_reference", sa.String(length=128), nullable=True),
        sa.Column("cancel_reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("total_cents >= 0", name=op.f("ck_ordering_order_total_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ordering_order")),
    )
    with op.batch_alter_table("ordering_order", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ordering_order_customer", ["customer_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_ordering_order_status", ["status", "created_at"], unique=False)

    op.create_table(
        "inventory_movement",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("warehouse_code", sa.String(length=32), nullable=False),
        sa.Column("delta", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=128), nullable=True),
        sa.Column("actor_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["warehouse_code"],
            ["inventory_warehouse.code"],
            name=op.f("fk_inventory_movement_warehouse_code_inventory_warehouse"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inventory_movement")),
    )
    with op.batch_alter_table("inventory_movement", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inventory_movement_sku_wh", ["sku", "warehouse_code", "id"], unique=False
        )

    op.create_table(
        "inventory_reservation",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ref", sa.String(length=128), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("warehouse_code", sa.String(length=32), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("qty > 0", name=op.f("ck_inventory_reservation_qty_positive")),
        sa.ForeignKeyConstraint(
            ["warehouse_code"],
            ["inventory_warehouse.code"],
            name=op.f("fk_inventory_reservation_warehouse_code_inventory_warehouse"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inventory_reservation")),
    )
    with op.batch_alter_table("inventory_reservation", schema=None) as batch_op:
        batch_op.create_index("ix_inventory_reservation_ref", ["ref"], unique=False)

    op.create_table(
        "inventory_stock",
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("warehouse_code", sa.String(length=32), nullable=False),
        sa.Column("on_hand", sa.BigInteger(), nullable=False),
        sa.Column("reserved", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("on_hand >= 0", name=op.f("ck_inventory_stock_on_hand_not_negative")),
        sa.CheckConstraint(
            "reserved <= on_hand", name=op.f("ck_inventory_stock_reserved_within_on_hand")
        ),
        sa.CheckConstraint("reserved >= 0", name=op.f("ck_inventory_stock_reserved_not_negative")),
        sa.ForeignKeyConstraint(
            ["warehouse_code"],
            ["inventory_warehouse.code"],
            name=op.f("fk_inventory_stock_warehouse_code_inventory_warehouse"),
        ),
        sa.PrimaryKeyConstraint("sku", "warehouse_code", name=op.f("pk_inventory_stock")),
    )
    op.create_table(
        "ordering_order_line",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("warehouse", sa.String(length=32), nullable=False),
        sa.Column("unit_price_cents", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("qty > 0", name=op.f("ck_ordering_order_line_qty_positive")),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["ordering_order.id"],
            name=op.f("fk_ordering_order_line_order_id_ordering_order"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ordering_order_line")),
    )
    with op.batch_alter_table("ordering_order_line", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ordering_order_line_order_id"), ["order_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ordering_order_line", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ordering_order_line_order_id"))

    op.drop_table("ordering_order_line")
    op.drop_table("inventory_stock")
    with op.batch_alter_table("inventory_reservation", schema=None) as batch_op:
        batch_op.drop_index("ix_inventory_reservation_ref")

    op.drop_table("inventory_reservation")
    with op.batch_alter_table("inventory_movement", schema=None) as batch_op:
        batch_op.drop_index("ix_inventory_movement_sku_wh")

    op.drop_table("inventory_movement")
    with op.batch_alter_table("ordering_order", schema=None) as batch_op:
        batch_op.drop_index("ix_ordering_order_status")
        batch_op.drop_index("ix_ordering_order_customer")

    op.drop_table("ordering_order")
    op.drop_table("ordering_idempotency")
    op.drop_table("inventory_warehouse")
    with op.batch_alter_table("events_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_events_outbox_unpublished")
        batch_op.drop_index("ix_events_outbox_aggregate")

    op.drop_table("events_outbox")
    op.drop_table("catalog_product")
    op.drop_table("accounts_user")
