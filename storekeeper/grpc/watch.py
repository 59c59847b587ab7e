"""Tailing the outbox for ``stock.changed`` events, for ``WatchStock``.

The outbox is the one ordered log of committed changes: a watcher takes a snapshot of it when
the call starts and from then on reads, every ``poll_s``, the rows committed since its last
snapshot (``outbox.read_feed``), so it sees each committed change exactly once and in commit
order, also on PostgreSQL where ids are not handed out in commit order. It reads the database
directly rather than the relay's broker: the gRPC process serves only (no relay runs in it),
and a client that is watching sees what committed, whether or not a relay is up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from storekeeper.db import Database
from storekeeper.events import outbox
from storekeeper.events.rows import FeedRow
from storekeeper.inventory.events import StockChanged

STOCK_CHANGED = StockChanged.type


@dataclass(frozen=True, slots=True)
class StockChange:
    """One committed ``stock.changed`` event and its position in the outbox."""

    position: int
    sku: str
    warehouse: str
    on_hand: int
    reserved: int
    reason: str
    ref: str | None


def snapshot_now(db: Database) -> outbox.Snapshot:
    """Where a watch starts: changes committed after this moment are the ones it sends."""
    with db.reading() as session:
        return outbox.snapshot(session.connection())


def tail_stock_changes(
    db: Database,
    *,
    since: outbox.Snapshot,
    skus: Collection[str],
    warehouse: str | None,
    poll_s: float,
    keep_going: Callable[[], bool],
    stopping: threading.Event,
) -> Iterator[StockChange]:
    """Stock changes committed after ``since``, of ``skus`` (all if none) in ``warehouse`` (or all).

    Ends when ``keep_going()`` turns false (the client hung up) or ``stopping`` is set.
    """
    wanted = frozenset(skus)
    aggregates = [("stock", f"@{warehouse}" if warehouse else None)]
    while keep_going() and not stopping.is_set():
        # Read the batch, then hand it out with the connection back in the pool: a slow client
        # must not hold a database connection while gRPC waits for it to take messages.
        with db.reading() as session:
            until = outbox.snapshot(session.connection())
            batch = _read_batch(session.connection(), since, until, aggregates)
        since = until
        for change in batch:
            if (not wanted or change.sku in wanted) and warehouse in (None, change.warehouse):
                yield change
        stopping.wait(poll_s)


def _read_batch(
    connection: Connection,
    since: outbox.Snapshot,
    until: outbox.Snapshot,
    aggregates: list[tuple[str, str | None]],
) -> list[StockChange]:
    """Every ``stock.changed`` row committed after ``since`` and by ``until``, page by page."""
    rows = outbox.read_between(
        connection, since=since, until=until, types=[STOCK_CHANGED], aggregates=aggregates
    )
    return [_change(row) for row in rows]


def _change(row: FeedRow) -> StockChange:
    event = outbox.decode(StockChanged, row.payload)
    return StockChange(
        position=row.position,
        sku=event.sku,
        warehouse=event.warehouse,
        on_hand=event.on_hand,
        reserved=event.reserved,
        reason=event.reason,
        ref=event.ref,
    )
