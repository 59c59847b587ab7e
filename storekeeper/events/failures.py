"""Delivery failures: one row per (consumer, event) a consumer could not apply.

A failing event is retried with exponential backoff (``RetryPolicy``) and, after
``STOREKEEPER_EVENT_MAX_ATTEMPTS`` attempts, *parked* for that consumer until an operator retries
or skips it (``storekeeper events parked | retry | skip``). While a consumer has an open failure
on an aggregate, its later events of that aggregate wait (``blocking``): order per aggregate is
the promise, and other consumers and other aggregates are not held up. This module owns the
table; ``relay`` applies events and ``redelivery`` retries them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.engine import Connection

from storekeeper.config import Settings
from storekeeper.db import as_aware, utcnow
from storekeeper.errors import Conflict, NotFound
from storekeeper.events.models import DeliveryFailure, OutboxEvent

_failures = cast(Table, DeliveryFailure.__table__)
_outbox = cast(Table, OutboxEvent.__table__)
MAX_ERROR_CHARS = 2000
DELIVERED, SKIPPED = "delivered", "skipped"


class FailedEvent(Protocol):
    """What a failure record keeps of the event (``relay.Envelope`` has it all)."""

    @property
    def position(self) -> int: ...
    @property
    def event_id(self) -> uuid.UUID: ...
    @property
    def type(self) -> str: ...
    @property
    def aggregate_type(self) -> str: ...
    @property
    def aggregate_id(self) -> str: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often a failing delivery is tried again, and how long it waits in between."""

    max_attempts: int = 5
    base_s: float = 5.0
    cap_s: float = 3600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """``STOREKEEPER_EVENT_MAX_ATTEMPTS`` and ``STOREKEEPER_EVENT_RETRY_BASE_S``."""
        return cls(max_attempts=settings.event_max_attempts, base_s=settings.event_retry_base_s)

    def delay_s(self, attempts: int) -> float:
        """The wait after the ``attempts``-th failure: base, twice that, four times … (capped)."""
        return float(min(self.cap_s, self.base_s * 2 ** min(attempts - 1, 64)))


class FailureNotFound(NotFound):
    """No delivery failure has this id."""

    code = "delivery_failure_not_found"


class FailureResolved(Conflict):
    """The delivery failure was resolved already (retried successfully or skipped)."""

    code = "delivery_failure_resolved"


@dataclass(frozen=True, slots=True)
class Failure:
    """One delivery failure as operators see it."""

    id: int
    consumer: str
    event_id: uuid.UUID
    position: int
    event_type: str
    aggregate_type: str
    aggregate_id: str
    attempts: int
    last_error: str
    first_failed_at: datetime
    last_failed_at: datetime
    next_attempt_at: datetime | None
    parked_at: datetime | None
    resolved_at: datetime | None
    resolution: str | None
    resolved_by: str | None
    reason: str | None

    @property
    def aggregate(self) -> str:
        """``type/id`` of the aggregate whose later events wait behind this one."""
        return f"{self.aggregate_type}/{self.aggregate_id}"

    @classmethod
    def _from(cls, row: Any) -> Failure:
        values = dict(row._mapping)
        for name in (
            "first_failed_at",
            "last_failed_at",
            "next_attempt_at",
            "parked_at",
            "resolved_at",
        ):
            values[name] = as_aware(values[name])
        return cls(**values)


def blocking(
    connection: Connection, *, consumer: str, aggregate_type: str, aggregate_id: str
) -> Failure | None:
    """The open failure ``consumer``'s later events of this aggregate must wait behind, if any."""
    row = connection.execute(
        select(_failures).where(
            _failures.c.consumer == consumer,
            _failures.c.aggregate_type == aggregate_type,
            _failures.c.aggregate_id == aggregate_id,
            _failures.c.resolved_at.is_(None),
        )
    ).first()
    return Failure._from(row) if row is not None else None


def record(
    connection: Connection,
    *,
    consumer: str,
    envelope: FailedEvent,
    error: BaseException,
    policy: RetryPolicy,
) -> Failure:
    """Note that ``consumer`` failed on ``envelope``: schedule the next attempt, or park it.

    Called under the (consumer, aggregate) lock, in the transaction that rolled the attempt's
    savepoint back, so the record commits with whatever the consumer did apply before it.
    """
    now = utcnow()
    text = f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]
    existing = connection.execute(
        select(_failures.c.id, _failures.c.attempts, _failures.c.parked_at).where(
            _failures.c.consumer == consumer, _failures.c.event_id == envelope.event_id
        )
    ).first()
    attempts = 1 if existing is None else existing.attempts + 1
    parked = attempts >= policy.max_attempts
    values: dict[str, Any] = {
        "attempts": attempts,
        "last_error": text,
        "last_failed_at": now,
        "next_attempt_at": None if parked else now + timedelta(seconds=policy.delay_s(attempts)),
        "parked_at": (existing.parked_at if existing is not None else None)
        or (now if parked else None),
    }
    if existing is None:
        failure_id = connection.execute(
            insert(_failures)
            .values(
                consumer=consumer,
                event_id=envelope.event_id,
                position=envelope.position,
                event_type=envelope.type,
                aggregate_type=envelope.aggregate_type,
                aggregate_id=envelope.aggregate_id,
                first_failed_at=now,
                **values,
            )
            .returning(_failures.c.id)
        ).scalar_one()
    else:
        failure_id = existing.id
        connection.execute(update(_failures).where(_failures.c.id == failure_id).values(**values))
    return get_or_raise(connection, failure_id)


def resolve(
    connection: Connection,
    *,
    failure_id: int,
    resolution: str,
    by: str | None = None,
    reason: str | None = None,
) -> None:
    """Close a failure: ``delivered`` (a retry went through) or ``skipped`` (given up on)."""
    connection.execute(
        update(_failures)
        .where(_failures.c.id == failure_id)
        .values(
            resolved_at=utcnow(),
            resolution=resolution,
            resolved_by=by,
            reason=reason,
            next_attempt_at=None,
        )
    )


def get_or_raise(connection: Connection, failure_id: int) -> Failure:
    """The failure with this id."""
    row = connection.execute(select(_failures).where(_failures.c.id == failure_id)).first()
    if row is None:
        raise FailureNotFound(f"no delivery failure {failure_id}")
    return Failure._from(row)


def open_or_raise(connection: Connection, failure_id: int) -> Failure:
    """The failure with this id, refusing one that is resolved already."""
    failure = get_or_raise(connection, failure_id)
    if failure.resolved_at is not None:
        raise FailureResolved(
            f"delivery failure {failure_id} was {failure.resolution} at {failure.resolved_at}"
        )
    return failure


def list_open(
    connection: Connection, *, parked_only: bool = True, limit: int = 200
) -> list[Failure]:
    """Open failures, oldest first: the parked ones, or also those still being retried."""
    query = select(_failures).where(_failures.c.resolved_at.is_(None))
    if parked_only:
        query = query.where(_failures.c.parked_at.is_not(None))
    rows = connection.execute(query.order_by(_failures.c.id).limit(limit))
    return [Failure._from(row) for row in rows]


def due(connection: Connection, *, limit: int = 100) -> list[tuple[int, int]]:
    """(id, attempts) of failures whose next automatic attempt is due, soonest first."""
    rows = connection.execute(
        select(_failures.c.id, _failures.c.attempts)
        .where(
            _failures.c.resolved_at.is_(None),
            _failures.c.next_attempt_at.is_not(None),
            _failures.c.next_attempt_at <= utcnow(),
        )
        .order_by(_failures.c.next_attempt_at)
        .limit(limit)
    )
    return [(row.id, row.attempts) for row in rows]


def postpone(connection: Connection, *, failure_ids: list[int], seconds: float) -> None:
    """Move the next attempt of these failures ``seconds`` ahead: they have been handed on, and
    come round again only if that attempt is lost (its process died, a message vanished)."""
    if failure_ids:
        connection.execute(
            update(_failures)
            .where(_failures.c.id.in_(failure_ids), _failures.c.parked_at.is_(None))
            .values(next_attempt_at=utcnow() + timedelta(seconds=seconds))
        )


@dataclass(frozen=True, slots=True)
class ConsumerFailures:
    """A consumer's open failures: being retried, and parked."""

    retrying: int
    parked: int


def open_by_consumer(connection: Connection) -> dict[str, ConsumerFailures]:
    """Every consumer that ever failed, with its open failures now (zeros once resolved)."""
    is_open = _failures.c.resolved_at.is_(None)
    rows = connection.execute(
        select(
            _failures.c.consumer,
            func.count().filter(is_open, _failures.c.parked_at.is_(None)).label("retrying"),
            func.count().filter(is_open, _failures.c.parked_at.is_not(None)).label("parked"),
        ).group_by(_failures.c.consumer)
    )
    return {row.consumer: ConsumerFailures(row.retrying, row.parked) for row in rows}
