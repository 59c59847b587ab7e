"""The outbox table: events committed in the same transaction as the state change they describe."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storekeeper.db import AutoIncrementId, Base, utcnow


class OutboxEvent(Base):
    """One event, waiting for (or already through) the relay; ``id`` orders it within the outbox."""

    __tablename__ = "events_outbox"
    __table_args__ = (
        Index("ix_events_outbox_unpublished", "published_at", "id"),
        Index("ix_events_outbox_aggregate", "aggregate_type", "aggregate_id", "id"),
        Index("ix_events_outbox_xid", "xid", "id"),
    )

    id: Mapped[int] = mapped_column(
        AutoIncrementId,
        primary_key=True,
        autoincrement=True,
    )
    event_id: Mapped[uuid.UUID] = mapped_column(unique=True, default=uuid.uuid4)
    type: Mapped[str] = mapped_column(String(64))
    aggregate_type: Mapped[str] = mapped_column(String(32))
    aggregate_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(default=None)
    # PostgreSQL: the writing transaction's id (``pg_current_xact_id()``), which tells readers
    # of the outbox in commit order which rows may still be joined by earlier ids (see
    # ``outbox.read_feed``). NULL on SQLite, where writers are serialized and ``id`` suffices.
    xid: Mapped[int | None] = mapped_column(BigInteger, default=None)


class InboxRecord(Base):
    """An event a consumer has processed; written in the same transaction as the consumer's effect.

    Redelivery of the same event to the same consumer finds this row and does nothing, which is
    what makes at-least-once delivery safe.
    """

    __tablename__ = "events_inbox"

    consumer: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(default=utcnow)


class RetentionMark(Base):
    """How far pruning has gone in an ordered log (``retention``): every row it deleted had an
    order key below ``pruned_below``, so a reader whose position is older must start over."""

    __tablename__ = "events_retention"

    log: Mapped[str] = mapped_column(String(32), primary_key=True)
    pruned_below: Mapped[int] = mapped_column(BigInteger)
    pruned_at: Mapped[datetime] = mapped_column(default=utcnow)
    xids_from: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """``PrunedXid`` holds the writer of every row deleted by a pruning transaction whose own id
    is at least this (older records are forgotten after a retention window)."""


class PrunedXid(Base):
    """PostgreSQL: a transaction that wrote outbox rows pruning has deleted (``retention``).

    A position whose snapshot had this transaction in progress has lost a row; one that had
    only other transactions in progress has not, however far the horizon went past them.
    """

    __tablename__ = "events_pruned_xid"
    __table_args__ = (Index("ix_events_pruned_xid_pruned_at", "pruned_at"),)

    xid: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    pruned_by: Mapped[int] = mapped_column(BigInteger)
    """The id of the first pruning transaction that deleted one of its rows."""
    pruned_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeliveryFailure(Base):
    """A consumer failing on one event: retried with backoff, then parked until an operator acts.

    While a row is open (``resolved_at`` NULL) the consumer's later events of the same aggregate
    wait behind it, so order per aggregate holds; other consumers and other aggregates go on.
    """

    __tablename__ = "events_delivery_failure"
    __table_args__ = (
        UniqueConstraint("consumer", "event_id"),
        Index("ix_events_delivery_failure_due", "resolved_at", "next_attempt_at"),
        Index(
            "ix_events_delivery_failure_aggregate",
            "consumer",
            "aggregate_type",
            "aggregate_id",
            "resolved_at",
        ),
    )

    id: Mapped[int] = mapped_column(AutoIncrementId, primary_key=True, autoincrement=True)
    consumer: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[uuid.UUID]
    position: Mapped[int] = mapped_column(BigInteger)
    """The event's outbox ``id``."""
    event_type: Mapped[str] = mapped_column(String(64))
    aggregate_type: Mapped[str] = mapped_column(String(32))
    aggregate_id: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=1)
    last_error: Mapped[str] = mapped_column(Text)
    first_failed_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_failed_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    """When the retry pass tries again; NULL once parked or resolved."""
    parked_at: Mapped[datetime | None] = mapped_column(default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    resolution: Mapped[str | None] = mapped_column(String(16), default=None)
    """``delivered`` (a retry succeeded) or ``skipped`` (an operator gave up on it)."""
    resolved_by: Mapped[str | None] = mapped_column(String(200), default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)


class RestoreRecord(Base):
    """One restore of this database from a backup: the newest row's ``generation`` is current.

    Positions in the outbox that readers keep outside the database (sync cursors) carry the
    generation they were issued in; after a restore the old positions may name events the
    restored outbox never had, so a new generation tells their holders to start over.
    """

    __tablename__ = "events_restore"

    id: Mapped[int] = mapped_column(AutoIncrementId, primary_key=True, autoincrement=True)
    generation: Mapped[str] = mapped_column(String(32))
    restored_at: Mapped[datetime] = mapped_column(default=utcnow)
    # What the backup held: when it was taken and its outbox's highest event id.
    backup_started_at: Mapped[datetime | None] = mapped_column(default=None)
    backup_point: Mapped[int | None] = mapped_column(BigInteger, default=None)
