"""Pruning the outbox and the inbox without leaving a reader silently behind.

An event is deleted once it is published, every consumer of its type has processed it (its
inbox row exists), and it is older than the offline window (``STOREKEEPER_SYNC_RETENTION_DAYS``);
its inbox rows go with it. The newest event is never deleted (on SQLite the next id would reuse
it). ``events_retention`` records the order key below which rows may be gone and, on
PostgreSQL, ``events_pruned_xid`` the transactions that wrote them: a sync cursor or a live
resume position that could have missed one of them (``pruned_past``) is told to start over
(``resync_required`` / ``reset``) instead of being served a feed with a hole.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Table,
    Text,
    delete,
    exists,
    false,
    func,
    select,
    tuple_,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from storekeeper.db import Database, as_aware, utcnow
from storekeeper.events.models import (
    DeliveryFailure,
    InboxRecord,
    OutboxEvent,
    PrunedXid,
    RetentionMark,
)
from storekeeper.events.outbox import Snapshot

_outbox = cast(Table, OutboxEvent.__table__)
_inbox = cast(Table, InboxRecord.__table__)
_mark = cast(Table, RetentionMark.__table__)
_failure = cast(Table, DeliveryFailure.__table__)
_pruned = cast(Table, PrunedXid.__table__)
OUTBOX = "outbox"
BATCH = 500
"""Rows per transaction: each batch holds the write lock for milliseconds, not the whole pass."""


def horizon(connection: Connection) -> int:
    """The order key below which outbox rows may have been pruned (0: never pruned)."""
    found = connection.execute(
        select(_mark.c.pruned_below).where(_mark.c.log == OUTBOX)
    ).scalar_one_or_none()
    return int(found or 0)


def pruned_past(connection: Connection, position: Snapshot) -> bool:
    """Whether pruning may have deleted a row committed after ``position`` (the snapshot a
    reader continues from): if so it must start over, since the feed from there has a hole.

    Pruned rows all have order keys below the horizon. A row below ``position.xmax`` that is
    not in ``position.xip`` had committed by then, so the reader has had it; the reader lost a
    row only if the horizon is above ``xmax`` or a pruned row's writer is in ``xip``. So not
    every transaction in ``xip`` below the horizon counts, only those that wrote pruned rows:
    PostgreSQL ids are the whole cluster's, and a transaction held open anywhere (a relay pass,
    a report, another database's work) is in every snapshot taken meanwhile.

    The writers are looked up in ``events_pruned_xid``, whose records of passes older than a
    retention window are forgotten (``xids_from`` says from which pruning transaction on they
    are all kept). That lookup is complete for ``position``: a writer in its ``xip`` committed
    after the snapshot, and the pass that deleted its row saw that commit, so that pass's own
    transaction id was assigned later still and is at least ``position.xmax``. A position with
    ``xmax`` below ``xids_from`` cannot be cleared that way and is refused if it has anything
    in progress below the horizon. On SQLite ``xip`` is always empty: ``xmax`` alone decides.

    One statement, so the horizon and the records are read at one moment: a pass committing
    between two reads could raise the horizon past a writer whose record was not yet seen.
    """
    # Every recorded writer is below the horizon (it is raised in the same transaction), so
    # the whole of ``xip`` can be looked up.
    known = exists().where(_pruned.c.xid.in_(position.xip)) if position.xip else false()
    found = connection.execute(
        select(_mark.c.pruned_below, _mark.c.xids_from, known.label("known")).where(
            _mark.c.log == OUTBOX
        )
    ).first()
    if found is None:
        return False
    horizon, xids_from = int(found.pruned_below), int(found.xids_from)
    if position.saw_all_below(horizon):
        return False
    if position.xmax < horizon:
        return True
    return position.xmax < xids_from or bool(found.known)


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
    postgres = db.dialect == "postgresql"
    key = _outbox.c.xid if postgres else _outbox.c.id
    if postgres and not dry_run:
        _forget_writers(db, before=before)
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
                if postgres:
                    _record_writers(connection, {int(row.key) for row in done if row.key})
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


def _record_writers(connection: Connection, xids: set[int]) -> None:
    """Record the transactions whose rows this pass deletes, with this pass's own id.

    ``pg_current_xact_id()`` here, after the DELETE: the id is assigned after the rows were
    seen committed, which is what ``pruned_past`` relies on. A writer already recorded keeps
    its first (lowest) pruning id: every snapshot that had it in progress is older than that.
    """
    if not xids:
        return
    statement = (
        pg_insert(_pruned)
        .values(pruned_by=sql_cast(sql_cast(func.pg_current_xact_id(), Text), BigInteger))
        .on_conflict_do_nothing(index_elements=["xid"])
    )
    now = utcnow()
    connection.execute(statement, [{"xid": x, "pruned_at": now} for x in sorted(xids)])


def _forget_writers(db: Database, *, before: datetime) -> None:
    """Forget the writers recorded by passes before ``before`` (a retention window ago): a
    position that could still need them is refused by ``xids_from`` instead."""
    with db.transaction() as session:
        connection = session.connection()
        forgotten = connection.execute(
            delete(_pruned).where(_pruned.c.pruned_at < before).returning(_pruned.c.pruned_by)
        ).scalars()
        last = max(forgotten, default=None)
        if last is not None:
            connection.execute(
                _mark.update()
                .where(_mark.c.log == OUTBOX, _mark.c.xids_from <= last)
                .values(xids_from=last + 1)
            )


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
