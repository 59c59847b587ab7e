"""Writing events to the outbox: the only way a context announces a change."""

from __future__ import annotations

import dataclasses
import uuid
from typing import ClassVar, Protocol, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from storekeeper.db import utcnow
from storekeeper.events.models import OutboxEvent

_outbox = cast(Table, OutboxEvent.__table__)


class Event(Protocol):
    """A domain event: a frozen dataclass naming its wire type and its aggregate."""

    type: ClassVar[str]
    aggregate_type: ClassVar[str]

    @property
    def aggregate_id(self) -> str: ...


def record(session: Session, *events: Event) -> None:
    """Add ``events`` to the outbox, in order; they commit (or not) with the caller's transaction.

    A Core INSERT on the session's connection (one executemany for several events), not ORM
    objects: events are written on every hot path and never read back in the same transaction.
    """
    if not events:
        return
    session.connection().execute(
        insert(_outbox),
        [
            {
                "event_id": uuid.uuid4(),
                "type": event.type,
                "aggregate_type": event.aggregate_type,
                "aggregate_id": event.aggregate_id,
                "payload": dataclasses.asdict(event),  # type: ignore[call-overload]
                "occurred_at": utcnow(),
            }
            for event in events
        ],
    )
