"""Tables of the inventory context.

``inventory_movement`` is the append-only ledger; ``inventory_stock`` is its running total per SKU
and warehouse, updated in the same transaction as every movement, with ``reserved`` beside it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from storekeeper.db import AutoIncrementId, Base, utcnow


class Warehouse(Base):
    """A place that holds stock, with coordinates for nearest-warehouse allocation."""

    __tablename__ = "inventory_warehouse"
    __table_args__ = (
        CheckConstraint("lat BETWEEN -90 AND 90", name="lat_range"),
        CheckConstraint("lon BETWEEN -180 AND 180", name="lon_range"),
    )

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    lat: Mapped[float]
    lon: Mapped[float]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StockLevel(Base):
    """On-hand and reserved units of one SKU in one warehouse."""

    __tablename__ = "inventory_stock"
    __table_args__ = (
        CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("reserved <= on_hand", name="reserved_within_on_hand"),
        # Sync pulls one warehouse's stock in SKU order (storekeeper.sync).
        Index("ix_inventory_stock_warehouse", "warehouse_code", "sku"),
    )

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    warehouse_code: Mapped[str] = mapped_column(
        ForeignKey("inventory_warehouse.code"), primary_key=True
    )
    on_hand: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)
    # Bumped by every change of the row: what a sync replica compares (storekeeper.sync).
    version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Movement(Base):
    """One change of on-hand stock; never updated or deleted."""

    __tablename__ = "inventory_movement"
    __table_args__ = (
        Index("ix_inventory_movement_sku_wh", "sku", "warehouse_code", "id"),
        Index("ix_inventory_movement_mutation", "mutation_id"),
    )

    id: Mapped[int] = mapped_column(AutoIncrementId, primary_key=True, autoincrement=True)
    sku: Mapped[str] = mapped_column(String(64))
    warehouse_code: Mapped[str] = mapped_column(ForeignKey("inventory_warehouse.code"))
    delta: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str | None] = mapped_column(String(128))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    # The offline replica and its mutation that caused the movement (storekeeper.sync), if any.
    replica_id: Mapped[str | None] = mapped_column(String(64), default=None)
    mutation_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    # What one unit cost, on a receipt that says so (docs/reports.md: moving average cost).
    unit_cost_cents: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Reservation(Base):
    """Units set aside for an order (``ref``) until it ships or is cancelled."""

    __tablename__ = "inventory_reservation"
    __table_args__ = (
        CheckConstraint("qty > 0", name="qty_positive"),
        Index("ix_inventory_reservation_ref", "ref"),
        Index("ix_inventory_reservation_expiry", "status", "expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    ref: Mapped[str] = mapped_column(String(128))
    sku: Mapped[str] = mapped_column(String(64))
    warehouse_code: Mapped[str] = mapped_column(ForeignKey("inventory_warehouse.code"))
    qty: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A reservation asked with a time-to-live (gRPC ``ttl_s``, HTTP ``ttl_s``) is released by
    # the expiry sweeper after this if still held; None: held until released or fulfilled.
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
