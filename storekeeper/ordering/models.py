"""Tables of the ordering context."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from storekeeper.db import AutoIncrementId, Base, utcnow


class Order(Base):
    """A customer's order; money in integer minor units of ``currency``."""

    __tablename__ = "ordering_order"
    __table_args__ = (
        CheckConstraint("total_cents >= 0", name="total_not_negative"),
        Index("ix_ordering_order_customer", "customer_id", "created_at"),
        Index("ix_ordering_order_status", "status", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID]
    status: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    total_cents: Mapped[int] = mapped_column(BigInteger)
    ship_to_lat: Mapped[float | None]
    ship_to_lon: Mapped[float | None]
    payment_method: Mapped[str] = mapped_column(String(16))
    payment_reference: Mapped[str | None] = mapped_column(String(128))
    cancel_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When it reached each later status (its history; the outbox's events are pruned).
    confirmed_at: Mapped[datetime | None] = mapped_column(default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)
    shipped_at: Mapped[datetime | None] = mapped_column(default=None)

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order",
        order_by="OrderLine.id",
        lazy="selectin",
        cascade="all, delete-orphan",
    )


class OrderLine(Base):
    """Units of one SKU served from one warehouse; a split line becomes several rows."""

    __tablename__ = "ordering_order_line"
    __table_args__ = (CheckConstraint("qty > 0", name="qty_positive"),)

    id: Mapped[int] = mapped_column(AutoIncrementId, primary_key=True, autoincrement=True)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ordering_order.id"), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    qty: Mapped[int]
    warehouse: Mapped[str] = mapped_column(String(32))
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)

    order: Mapped[Order] = relationship(back_populates="lines")


class IdempotencyRecord(Base):
    """The first response to an ``Idempotency-Key`` of a caller, replayed on retries."""

    __tablename__ = "ordering_idempotency"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    response: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
