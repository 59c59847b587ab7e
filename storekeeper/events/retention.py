"""Pruning the outbox and the inbox without leaving a reader silently behind.

An event is deleted once it is published, every consumer of its type has processed it (its
inbox row exists), and it is older than the offline window (``STOREKEEPER_SYNC_RETENTION_DAYS``);
its inbox rows go with it. The newest event is never deleted (on SQLite the next id would reuse
it). ``events_retention`` records the order key below which rows may be gone: a sync cursor or a
live resume position whose snapshot had not seen every row below it could have missed events
(``Snapshot.saw_all_below``), so it is told to start over (``resync_required`` / ``reset``)
instead of being served a feed with a hole.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, delete, func, select, tuple_
from sqlalchemy.engine import Connection

from storekeeper.db import Database, as_aware, utcnow
from storekeeper.events.models import DeliveryFailure, InboxRecord, OutboxEvent, RetentionMark

_outbox = cast(Table, OutboxEvent.__table__)
_inbox = cast(Table, InboxRecord.__table__)
_mark = cast(Table, RetentionMark.__table__)
_failure = cast(Table, DeliveryFailure.__table__)
OUTBOX = "outbox"
BATCH = 500
"""Rows per transaction: each batch holds the write lock for milliseconds, not the whole pass."""


def horizon(connection: Connection) -> int:
    """The order key below which outbox rows may have been pruned (0: never pruned)."""
    found = connection.execute(
        select(_mark.c.pruned_below).where(_mark.c.log == OUTBOX)
    ).scalar_one_or_none()
    return int(found or 0)


@dataclasses.dataclass(frozen=True, slots=True)
class Pruned:
    """What one pruning pass of a table did (or, in a dry run, would do)."""

    table: str
    rows: int
    oldest_kept: datetime | None
    """When the oldest row still there was written (after this pass)."""


def prune_outbox(
    db: Database,
    *,
    consumers_of: Callable[[str], list[str]],
    before: datetime,
    dry_run: bool = False,
    batch: int = BATCH,
) -> list[Pruned]:
    """Delete published, fully processed events that occurred before ``before``, with their
    inbox rows, in batches; ``consumers_of`` names the consumers an event type must have had."""
    key = _outbox.c.xid if db.dialect == "postgresql" else _outbox.c.id
    events = inbox = 0
    after = 0
    while True:
        with db.transaction() as session:
            connection = session.connection()
            newest = connection.execute(select(func.max(_outbox.c.id))).scalar_one_or_none()
            rows = connection.execute(
                select(_outbox.c.id, _outbox.c.event_id, _outbox.c.type, key.label("key"))
                .where(
                    _outbox.c.id > after,
                    _outbox.c.id < (newest or 0),
                    _outbox.c.published_at.is_not(None),
                    _outbox.c.occurred_at < before,
                )
                .order_by(_outbox.c.id)
                .limit(batch)
            ).all()
            if not rows:
                break
            after = rows[-1].id
            processed: dict[object, set[str]] = {}
            for consumer, event_id in connection.execute(
                select(_inbox.c.consumer, _inbox.c.event_id).where(
                    _inbox.c.event_id.in_([row.event_id for row in rows])
                )
            ):
                processed.setdefault(event_id, set()).add(consumer)
            done = [
                row
                for row in rows
                if set(consumers_of(row.type)) <= processed.get(row.event_id, set())
            ]
            events += len(done)
            inbox += sum(len(processed.get(row.event_id, ())) for row in done)
            if done and not dry_run:
                ids = [row.event_id for row in done]
                connection.execute(delete(_inbox).where(_inbox.c.event_id.in_(ids)))
                connection.execute(delete(_outbox).where(_outbox.c.id.in_([r.id for r in done])))
                _raise_mark(connection, max(int(row.key or 0) for row in done) + 1)
    with db.reading() as session:
        connection = session.connection()
        oldest = as_aware(connection.execute(select(func.min(_outbox.c.occurred_at))).scalar())
        oldest_processed = as_aware(
            connection.execute(select(func.min(_inbox.c.processed_at))).scalar()
        )
    return [
        Pruned("events_outbox", events, oldest),
        Pruned("events_inbox", inbox, oldest_processed),
    ]


def _raise_mark(connection: Connection, pruned_below: int) -> None:
    current = horizon(connection)
    if pruned_below <= current:
        return
    values = {"pruned_below": pruned_below, "pruned_at": utcnow()}
    if connection.execute(select(_mark.c.log).where(_mark.c.log == OUTBOX)).first() is None:
        connection.execute(_mark.insert().values(log=OUTBOX, **values))
    else:
        connection.execute(_mark.update().where(_mark.c.log == OUTBOX).values(**values))


def delete_in_batches(
    db: Database,
    table: Table,
    *,
    where: ColumnElement[bool],
    key: Sequence[Any],
    dry_run: bool = False,
    batch: int = BATCH,
) -> int:
    """Delete the rows of ``table`` matching ``where``, ``batch`` at a time in key order (one
    short transaction each); returns how many matched. The helper of every table's pruning."""
    matched = 0
    after: tuple[Any, ...] | None = None
    while True:
        with db.transaction() as session:
            connection = session.connection()
            query = select(*key).where(where).order_by(*key).limit(batch)
            if after is not None:
                query = query.where(tuple_(*key) > tuple_(*after))
            found = [tuple(row) for row in connection.execute(query)]
            if not found:
                return matched
            matched += len(found)
            after = found[-1]
            if not dry_run:
                connection.execute(delete(table).where(tuple_(*key).in_(found)))


def prune_failures(db: Database, *, before: datetime, dry_run: bool = False) -> Pruned:
    """Delete delivery failures resolved (delivered or skipped) before ``before``; open and
    parked ones stay until an operator resolves them."""
    pruned = delete_in_batches(
        db,
        _failure,
        where=_failure.c.resolved_at < before,
        key=[_failure.c.id],
        dry_run=dry_run,
    )
    with db.reading() as session:
        oldest = session.connection().execute(select(func.min(_failure.c.first_failed_at))).scalar()
    return Pruned("events_delivery_failure", pruned, as_aware(oldest))
