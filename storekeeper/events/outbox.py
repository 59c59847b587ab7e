"""Writing events to the outbox: the only way a context announces a change."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Protocol

from sqlalchemy.orm import Session

from storekeeper.events.models import OutboxEvent


class Event(Protocol):
    """A domain event: a frozen dataclass naming its wire type and its aggregate."""

    type: ClassVar[str]
    aggregate_type: ClassVar[str]

    @property
    def aggregate_id(self) -> str: ...


def record(session: Session, event: Event) -> None:
    """Add ``event`` to the outbox; it commits (or not) with the caller's transaction."""
    payload: dict[str, Any] = dataclasses.asdict(event)  # type: ignore[call-overload]
    session.add(
        OutboxEvent(
            type=event.type,
            aggregate_type=event.aggregate_type,
            aggregate_id=event.aggregate_id,
            payload=payload,
        )
    )
