"""Delivering failed events again: the leader's retry pass, and an operator's retry or skip.

The retry pass (``retry_due``, run by the background leader) finds failures whose next attempt
is due and hands each on: in embedded mode straight to ``redeliver_now``, in distributed mode as
a broker message a worker turns into the same call. Before handing them on it moves their next
attempt a lease ahead, so an attempt lost with its process or message is simply made again.

A redelivery applies the failed event and then every later event of its aggregate the consumer
has not processed (they waited behind it), in order, in one transaction under the
(consumer, aggregate) lock: nothing is applied twice, and a crash leaves nothing half done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from storekeeper.db import Database
from storekeeper.errors import Conflict
from storekeeper.events import failures, relay
from storekeeper.events.failures import Failure, RetryPolicy

log = logging.getLogger(__name__)

Redeliver = Callable[[int, int], None]
"""Retries failure ``id`` whose row said ``attempts`` when the pass picked it."""


class UnknownConsumer(Conflict):
    """The failure's consumer is not registered in this process (renamed or removed)."""

    code = "unknown_consumer"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a retry or skip went: the failure now, events applied, and a new failure if any."""

    failure: Failure
    applied: int
    failed: Failure | None

    @property
    def resolved(self) -> bool:
        """Whether the failure is closed (delivered or skipped)."""
        return self.failure.resolved_at is not None


def retry_due(db: Database, *, redeliver: Redeliver, redispatch_after_s: float) -> int:
    """Hand every failure whose next attempt is due to ``redeliver``; returns how many."""
    with db.reading() as session:  # a read first: on SQLite a write takes the writer lock
        due = failures.due(session.connection())
    if not due:
        return 0
    with db.transaction() as session:
        failures.postpone(
            session.connection(),
            failure_ids=[failure_id for failure_id, _ in due],
            seconds=redispatch_after_s,
        )
    for failure_id, attempts in due:
        try:
            redeliver(failure_id, attempts)
        except Exception:  # the rest come round again once their postponement runs out
            log.exception("could not retry delivery failure %s; it is retried later", failure_id)
            break
    return len(due)


def local_redeliver(db: Database, consumers: relay.Consumers, policy: RetryPolicy) -> Redeliver:
    """The embedded-mode way to retry a failure: in this process, at once."""

    def run(failure_id: int, attempts: int) -> None:
        redeliver_now(db, consumers, failure_id=failure_id, attempts=attempts, policy=policy)

    return run


def redeliver_now(
    db: Database,
    consumers: relay.Consumers,
    *,
    failure_id: int,
    attempts: int,
    policy: RetryPolicy,
) -> Outcome | None:
    """The automatic retry of one failure, in a transaction of its own.

    Does nothing (returns None) if the failure changed since the pass picked it: resolved by an
    operator, parked, or already retried by a duplicate of this attempt.
    """
    with db.transaction() as session:
        connection = session.connection()
        try:
            failure = _open_and_locked(connection, failure_id)
        except failures.FailureResolved:
            return None
        if failure.attempts != attempts or failure.parked_at is not None:
            return None
        try:
            return _apply(session, consumers, failure, policy=policy)
        except UnknownConsumer:
            log.warning(
                "delivery failure %s: consumer %s is unknown here", failure_id, failure.consumer
            )
            return None


def retry(
    session: Session,
    *,
    consumers: relay.Consumers,
    failure_id: int,
    policy: RetryPolicy,
    by: str,
) -> Outcome:
    """Deliver a parked (or still retrying) event now, then the events that waited behind it."""
    failure = _open_and_locked(session.connection(), failure_id)
    return _apply(session, consumers, failure, policy=policy, by=by)


def skip(
    session: Session,
    *,
    consumers: relay.Consumers,
    failure_id: int,
    reason: str,
    by: str,
    policy: RetryPolicy,
) -> Outcome:
    """Give up on the event for its consumer (recorded in its inbox as processed, unapplied),
    then deliver the events that waited behind it."""
    connection = session.connection()
    failure = _open_and_locked(connection, failure_id)
    relay.mark_processed(connection, consumer=failure.consumer, event_id=failure.event_id)
    failures.resolve(
        connection, failure_id=failure.id, resolution=failures.SKIPPED, by=by, reason=reason
    )
    try:
        handlers = _handlers(consumers, failure.consumer)
    except UnknownConsumer:  # a consumer that is gone has nothing waiting to run either
        handlers = {}
    applied = relay.apply_pending(
        session,
        consumer=failure.consumer,
        handlers=handlers,
        aggregate_type=failure.aggregate_type,
        aggregate_id=failure.aggregate_id,
        through=None,
        policy=policy,
    )
    return Outcome(failures.get_or_raise(connection, failure.id), applied.count, applied.failure)


def _open_and_locked(connection: Connection, failure_id: int) -> Failure:
    """The open failure, read again once its (consumer, aggregate) lock is held."""
    failure = failures.open_or_raise(connection, failure_id)
    relay.lock_aggregate(connection, failure.consumer, failure.aggregate_type, failure.aggregate_id)
    return failures.open_or_raise(connection, failure_id)


def _apply(
    session: Session,
    consumers: relay.Consumers,
    failure: Failure,
    *,
    policy: RetryPolicy,
    by: str | None = None,
) -> Outcome:
    connection = session.connection()
    applied = relay.apply_pending(
        session,
        consumer=failure.consumer,
        handlers=_handlers(consumers, failure.consumer),
        aggregate_type=failure.aggregate_type,
        aggregate_id=failure.aggregate_id,
        through=None,
        policy=policy,
    )
    # The failed event is the first one unprocessed: anything that stopped the pass later means
    # it went through (the later event has a failure of its own now).
    if applied.failure is None or applied.failure.id != failure.id:
        failures.resolve(connection, failure_id=failure.id, resolution=failures.DELIVERED, by=by)
        log.info(
            "consumer %s: event %s delivered on retry, with %d event(s) in all",
            failure.consumer,
            failure.position,
            applied.count,
        )
    return Outcome(failures.get_or_raise(connection, failure.id), applied.count, applied.failure)


def _handlers(consumers: relay.Consumers, consumer: str) -> Mapping[str, relay.Handler]:
    try:
        return consumers.handlers(consumer)
    except KeyError:
        raise UnknownConsumer(
            f"consumer {consumer!r} is not registered in this process: deploy the code that "
            "has it, or skip its events"
        ) from None
