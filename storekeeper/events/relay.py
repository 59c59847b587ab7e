"""The outbox relay for embedded mode: delivers committed events to in-process consumers.

At least once and in outbox order (so in order per aggregate). Each consumer's effect commits
together with its inbox record, so a redelivered event is a no-op for a consumer that already
processed it. A consumer that fails stops the relay at that event: later events wait (keeping
their order) and the failed one is retried on the next pass; consumers that already succeeded
on it are not run again.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.orm import Session

from storekeeper.db import Database, utcnow
from storekeeper.events.models import InboxRecord, OutboxEvent

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


Handler = Callable[[Session, Envelope], None]
"""Applies an event's effect inside the given transaction; raises to have it retried."""


@dataclass
class Consumers:
    """Which named consumer handles which event types."""

    _by_type: dict[str, list[tuple[str, Handler]]] = field(default_factory=dict)

    def subscribe(self, consumer: str, event_type: str, handler: Handler) -> None:
        """Have ``consumer`` run ``handler`` for every event of ``event_type``."""
        self._by_type.setdefault(event_type, []).append((consumer, handler))

    def for_type(self, event_type: str) -> list[tuple[str, Handler]]:
        """The consumers of ``event_type``, in subscription order."""
        return self._by_type.get(event_type, [])


_PENDING = select(_outbox).where(_outbox.c.published_at.is_(None)).order_by(_outbox.c.id).limit(200)


def relay_once(db: Database, consumers: Consumers) -> int:
    """Deliver pending events in order until one fails or none is left; returns how many."""
    with db.reading() as session:
        rows = session.connection().execute(_PENDING).mappings().all()
    delivered: list[int] = []
    for row in rows:
        envelope = Envelope(
            position=row["id"],
            event_id=row["event_id"],
            type=row["type"],
            aggregate_type=row["aggregate_type"],
            aggregate_id=row["aggregate_id"],
            payload=row["payload"],
            occurred_at=row["occurred_at"],
        )
        if not _deliver(db, consumers, envelope):
            break
        delivered.append(envelope.position)
    if delivered:
        # One write per pass, not per event: a crash before it only means redelivery, which the
        # consumers' inbox turns into a no-op.
        with db.transaction() as session:
            session.connection().execute(
                update(_outbox).where(_outbox.c.id.in_(delivered)).values(published_at=utcnow())
            )
    return len(delivered)


def _deliver(db: Database, consumers: Consumers, envelope: Envelope) -> bool:
    for consumer, handler in consumers.for_type(envelope.type):
        try:
            with db.transaction() as session:
                connection = session.connection()
                seen = connection.execute(
                    select(_inbox.c.event_id).where(
                        _inbox.c.consumer == consumer, _inbox.c.event_id == envelope.event_id
                    )
                ).first()
                if seen is not None:
                    continue
                handler(session, envelope)
                connection.execute(
                    insert(_inbox),
                    [
                        {
                            "consumer": consumer,
                            "event_id": envelope.event_id,
                            "processed_at": utcnow(),
                        }
                    ],
                )
        except Exception:
            log.exception(
                "consumer %s failed on event %s (%s); it will be retried",
                consumer,
                envelope.position,
                envelope.type,
            )
            return False
    return True


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
    oldest = _aware(row.oldest)
    lag = (utcnow() - oldest).total_seconds() if oldest else 0.0
    return OutboxStatus(row.pending, row.published, oldest, _aware(row.last), lag)


def _aware(value: datetime | str | None) -> datetime | None:
    # Aggregates lose the column type on SQLite and come back as text.
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class RelayThread:
    """Runs ``relay_once`` every ``interval_s`` in a daemon thread until stopped."""

    def __init__(self, db: Database, consumers: Consumers, *, interval_s: float = 0.5) -> None:
        self._db, self._consumers, self._interval = db, consumers, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)

    def start(self) -> None:
        """Begin relaying."""
        self._thread.start()

    def stop(self) -> None:
        """Finish the current pass and stop."""
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                relay_once(self._db, self._consumers)
            except Exception:  # a database hiccup must not end the relay for good
                log.exception("outbox relay pass failed; retrying")
            self._stop.wait(self._interval)
