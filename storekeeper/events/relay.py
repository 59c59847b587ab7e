"""The outbox relay and event delivery.

The relay reads committed events in outbox order and hands each to a publisher: in embedded mode
straight to the in-process consumers (``deliver``), in distributed mode to the broker, whose
workers then call ``deliver``. A publisher that fails (the database or the broker is down) stops
the pass at that event, so later events wait and keep their order; the event is retried on the
next pass. A *consumer* that fails on an event does not stop anything else: the failure is
recorded for that consumer and event (``failures``) and retried with backoff by the leader
(``redelivery``), and only that consumer's later events of the same aggregate wait behind it.
Delivery is therefore at least once, and ``deliver`` makes it exactly once per consumer's effect
and in order per aggregate, however many workers deliver concurrently: see ``deliver``.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, func, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.orm import Session

from storekeeper.db import Database, as_aware, insert_ignoring_conflicts, utcnow
from storekeeper.events import failures
from storekeeper.events.failures import RetryPolicy
from storekeeper.events.models import InboxRecord, OutboxEvent
from storekeeper.observability import metrics
from storekeeper.observability.counting import count_on_commit

log = logging.getLogger(__name__)
_outbox = cast(Table, OutboxEvent.__table__)
_inbox = cast(Table, InboxRecord.__table__)


@dataclass(frozen=True, slots=True)
class Envelope:
    """A committed event as consumers receive it."""

    position: int
    event_id: uuid.UUID
    type: str
    aggregate_type: str
    aggregate_id: str
    payload: dict[str, Any]
    occurred_at: datetime

    @classmethod
    def from_row(cls, row: RowMapping) -> Envelope:
        """The envelope of an outbox row."""
        return cls(
            position=row["id"],
            event_id=row["event_id"],
            type=row["type"],
            aggregate_type=row["aggregate_type"],
            aggregate_id=row["aggregate_id"],
            payload=row["payload"],
            occurred_at=row["occurred_at"],
        )

    def to_message(self) -> dict[str, Any]:
        """The JSON form sent through a broker."""
        return {
            "position": self.position,
            "event_id": str(self.event_id),
            "type": self.type,
            "aggregate_type": self.aggregate_type,
            "aggregate_id": self.aggregate_id,
            "payload": self.payload,
            "occurred_at": self.occurred_at.isoformat(),
        }

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> Envelope:
        """Read the JSON form back."""
        return cls(
            position=int(message["position"]),
            event_id=uuid.UUID(message["event_id"]),
            type=message["type"],
            aggregate_type=message["aggregate_type"],
            aggregate_id=message["aggregate_id"],
            payload=dict(message["payload"]),
            occurred_at=datetime.fromisoformat(message["occurred_at"]),
        )


Handler = Callable[[Session, Envelope], None]
"""Applies an event's effect inside the given transaction; raises to have it retried."""

Publish = Callable[[Envelope], None]
"""Hands one event on (to consumers or a broker); raises if it could not."""


@dataclass
class Consumers:
    """Which named consumer handles which event types."""

    _handlers: dict[str, dict[str, Handler]] = field(default_factory=dict)

    def subscribe(self, consumer: str, event_type: str, handler: Handler) -> None:
        """Have ``consumer`` run ``handler`` for every event of ``event_type``."""
        self._handlers.setdefault(consumer, {})[event_type] = handler

    def of(self, event_type: str) -> list[str]:
        """The consumers of ``event_type``, in subscription order."""
        return [name for name, handlers in self._handlers.items() if event_type in handlers]

    def handlers(self, consumer: str) -> dict[str, Handler]:
        """``consumer``'s handler for each event type it takes."""
        return self._handlers[consumer]


BATCH = 200
_PENDING = (
    select(_outbox).where(_outbox.c.published_at.is_(None)).order_by(_outbox.c.id).limit(BATCH)
)


def relay_once(db: Database, publish: Publish) -> int:
    """Publish pending events in order until one fails or none is left; returns how many."""
    with db.reading() as session:
        rows = session.connection().execute(_PENDING).mappings().all()
    published: list[int] = []
    for row in rows:
        envelope = Envelope.from_row(row)
        try:
            publish(envelope)
        except Exception:  # the event stays pending and is retried on the next pass
            log.exception("could not publish event %s (%s); retrying", row["id"], row["type"])
            break
        published.append(envelope.position)
    if published:
        # One write per pass, not per event: a crash before it only means republishing, which
        # the consumers' inbox turns into a no-op.
        with db.transaction() as session:
            session.connection().execute(
                update(_outbox).where(_outbox.c.id.in_(published)).values(published_at=utcnow())
            )
    return len(published)


@dataclass(frozen=True, slots=True)
class Applied:
    """What ``apply_pending`` did: events applied, and the failure that stopped it, if any."""

    count: int
    failure: failures.Failure | None


def local_delivery(
    db: Database, consumers: Consumers, policy: RetryPolicy | None = None
) -> Publish:
    """The embedded-mode publisher: deliver each event to the in-process consumers."""
    chosen = policy or RetryPolicy()
    return lambda envelope: deliver(db, consumers, envelope, policy=chosen)


def deliver(
    db: Database, consumers: Consumers, envelope: Envelope, *, policy: RetryPolicy | None = None
) -> None:
    """Apply ``envelope`` to each of its consumers: once, and in order per aggregate.

    For each consumer, in one transaction: take a per-(consumer, aggregate) lock, find every event
    of this aggregate up to this one that the consumer takes and has not processed yet, apply them
    in outbox order, and record them in its inbox. A redelivered event thus finds itself in the
    inbox and does nothing; an event that overtook an earlier one (two workers, a retried
    message) applies the earlier one first. A consumer that raises has its failure recorded
    (``failures.record``) and the next consumer runs; while that failure is open, the
    consumer's later events of the aggregate are left for the retry (``redelivery``) to apply.
    Raises only when the database itself fails, and the event is then handed on again.
    """
    chosen = policy or RetryPolicy()
    for consumer in consumers.of(envelope.type):
        with db.transaction() as session:
            connection = session.connection()
            lock_aggregate(connection, consumer, envelope.aggregate_type, envelope.aggregate_id)
            held = failures.blocking(
                connection,
                consumer=consumer,
                aggregate_type=envelope.aggregate_type,
                aggregate_id=envelope.aggregate_id,
            )
            if held is not None:  # it waits behind the failing event of its aggregate
                continue
            apply_pending(
                session,
                consumer=consumer,
                handlers=consumers.handlers(consumer),
                aggregate_type=envelope.aggregate_type,
                aggregate_id=envelope.aggregate_id,
                through=envelope.position,
                policy=chosen,
            )


def apply_pending(
    session: Session,
    *,
    consumer: str,
    handlers: Mapping[str, Handler],
    aggregate_type: str,
    aggregate_id: str,
    through: int | None,
    policy: RetryPolicy,
) -> Applied:
    """Apply ``consumer``'s unprocessed events of one aggregate (up to position ``through``, or
    all) in order, each with its inbox row; stop at the first that raises and record it.

    The caller holds the (consumer, aggregate) lock. Each event runs in a savepoint, so a
    failing one leaves no trace but its failure record, and the ones before it commit with the
    caller's transaction. Returns how many applied, and the failure recorded if one failed.
    """
    connection = session.connection()
    applied = 0
    for row in _unprocessed(
        connection, consumer, list(handlers), aggregate_type, aggregate_id, through
    ):
        event = Envelope.from_row(row)
        try:
            with session.begin_nested():
                handlers[event.type](session, event)
                session.flush()
                connection.execute(
                    _inbox.insert().values(
                        consumer=consumer, event_id=event.event_id, processed_at=utcnow()
                    )
                )
        except Exception as exc:  # the consumer's bug or outage: recorded, retried later
            failure = failures.record(
                connection, consumer=consumer, envelope=event, error=exc, policy=policy
            )
            parked = failure.parked_at is not None
            # Parking is what an operator must act on: an error, where a retry is a warning.
            log.log(
                logging.ERROR if parked else logging.WARNING,
                "consumer %s failed on event %s (%s, %s/%s), attempt %d%s: %s",
                consumer,
                event.position,
                event.type,
                event.aggregate_type,
                event.aggregate_id,
                failure.attempts,
                "; parked (storekeeper events parked)" if parked else "",
                failure.last_error,
                exc_info=failure.attempts == 1,
            )
            count_on_commit(session, metrics.EVENT_DELIVERY_FAILURES.labels(consumer))
            return Applied(applied, failure)
        applied += 1
    return Applied(applied, None)


def mark_processed(connection: Connection, *, consumer: str, event_id: uuid.UUID) -> None:
    """Record ``event_id`` in ``consumer``'s inbox without running it (an operator skipped it)."""
    connection.execute(
        insert_ignoring_conflicts(connection.dialect.name, _inbox).values(
            consumer=consumer, event_id=event_id, processed_at=utcnow()
        )
    )


def lock_aggregate(
    connection: Connection, consumer: str, aggregate_type: str, aggregate_id: str
) -> None:
    """Serialize deliveries to one consumer of one aggregate until the transaction ends."""
    if connection.dialect.name == "postgresql":  # SQLite serializes writers already
        name = f"{consumer}|{aggregate_type}|{aggregate_id}".encode()
        key = int.from_bytes(hashlib.blake2b(name, digest_size=8).digest(), "big", signed=True)
        connection.execute(select(func.pg_advisory_xact_lock(key)))


def _unprocessed(
    connection: Connection,
    consumer: str,
    types: list[str],
    aggregate_type: str,
    aggregate_id: str,
    through: int | None,
) -> list[RowMapping]:
    query = (
        select(_outbox)
        .outerjoin(
            _inbox, and_(_inbox.c.consumer == consumer, _inbox.c.event_id == _outbox.c.event_id)
        )
        .where(
            _outbox.c.aggregate_type == aggregate_type,
            _outbox.c.aggregate_id == aggregate_id,
            _outbox.c.type.in_(types),
            _inbox.c.event_id.is_(None),
        )
        .order_by(_outbox.c.id)
    )
    if through is not None:
        query = query.where(_outbox.c.id <= through)
    return list(connection.execute(query).mappings())


@dataclass(frozen=True, slots=True)
class OutboxStatus:
    """How far the relay is behind."""

    pending: int
    published: int
    oldest_pending_at: datetime | None
    last_published_at: datetime | None
    lag_s: float


def status(db: Database) -> OutboxStatus:
    """Pending and published counts, and the age of the oldest undelivered event."""
    with db.reading() as session:
        row = (
            session.connection()
            .execute(
                select(
                    func.count().filter(_outbox.c.published_at.is_(None)).label("pending"),
                    func.count().filter(_outbox.c.published_at.is_not(None)).label("published"),
                    func.min(_outbox.c.occurred_at)
                    .filter(_outbox.c.published_at.is_(None))
                    .label("oldest"),
                    func.max(_outbox.c.published_at).label("last"),
                )
            )
            .one()
        )
    oldest = as_aware(row.oldest)
    lag = (utcnow() - oldest).total_seconds() if oldest else 0.0
    return OutboxStatus(row.pending, row.published, oldest, as_aware(row.last), lag)


def processed_by_consumer(db: Database) -> dict[str, int]:
    """How many events each consumer has processed (its inbox size)."""
    with db.reading() as session:
        rows = session.connection().execute(
            select(_inbox.c.consumer, func.count()).group_by(_inbox.c.consumer)
        )
        return {consumer: count for consumer, count in rows.all()}
