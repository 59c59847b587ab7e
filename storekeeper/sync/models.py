"""Tables of the sync context: every mutation a replica pushed, and the exceptions offline work
raised for a manager."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storekeeper.db import AutoIncrementId, Base, utcnow


class PushedMutation(Base):
    """A replica's mutation and the verdict it got; its id makes a replay a no-op."""

    __tablename__ = "sync_mutation"
    __table_args__ = (Index("ix_sync_mutation_replica", "replica_id", "received_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    replica_id: Mapped[str] = mapped_column(String(64))
    actor_id: Mapped[uuid.UUID | None]
    type: Mapped[str] = mapped_column(String(64))
    hlc: Mapped[str] = mapped_column(String(128))
    # SHA-256 of the mutation as pushed: a replay must be the same mutation, not just its id.
    digest: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any] | None]
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class SyncException(Base):
    """Offline stock work the server could not apply in full, for a manager to resolve."""

    __tablename__ = "sync_exception"
    __table_args__ = (
        CheckConstraint("shortfall > 0", name="shortfall_positive"),
        CheckConstraint("status IN ('open', 'resolved')", name="status_known"),
        CheckConstraint(
            "resolution IS NULL OR "
            "resolution IN ('accept_loss', 'correct_count', 'attach_receipt')",
            name="resolution_known",
        ),
        Index("ix_sync_exception_status", "status", "id"),
        Index("ix_sync_exception_warehouse", "warehouse_code", "status", "id"),
    )

    id: Mapped[int] = mapped_column(AutoIncrementId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="open")
    sku: Mapped[str] = mapped_column(String(64))
    warehouse_code: Mapped[str] = mapped_column(String(32))
    replica_id: Mapped[str] = mapped_column(String(64))
    mutation_id: Mapped[uuid.UUID]
    actor_id: Mapped[uuid.UUID | None]
    requested: Mapped[int] = mapped_column(BigInteger)
    applied: Mapped[int] = mapped_column(BigInteger)
    shortfall: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    resolved_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    # How it was settled (``sync.exceptions.Resolution``); the count entered, or the receipt
    # movement the missing units came from.
    resolution: Mapped[str | None] = mapped_column(String(32), default=None)
    counted: Mapped[int | None] = mapped_column(BigInteger, default=None)
    receipt_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
