"""Reading the outbox for live clients: a batch for the hub, a replay for a resuming client.

Rows are read between outbox snapshots (``outbox.read_feed``), so a transaction that commits
late is read in the batch it committed in, never skipped; each row becomes its public event
with the position to resume after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from storekeeper.events import outbox
from storekeeper.events.outbox import Snapshot
from storekeeper.events.rows import FeedRow
from storekeeper.live import domain, positions
from storekeeper.live.domain import LiveEvent
from storekeeper.live.positions import Position


@dataclass(frozen=True, slots=True)
class Delivery:
    """An event on its way to clients, with the position (event id) to resume after it."""

    event: LiveEvent
    id: str


def batch(
    connection: Connection, since: Snapshot, types: Sequence[str] = domain.SOURCE_TYPES
) -> tuple[Snapshot, list[FeedRow]]:
    """The outbox's snapshot now, and every row of ``types`` committed after ``since`` and by
    it (by default those live clients get; the hub adds its watchers' types)."""
    until = outbox.snapshot(connection)
    return until, _read_range(connection, since, until, None, None, types) or []


def replay(
    connection: Connection, start: Position, upto: Snapshot, cap: int, generation: str
) -> list[Delivery] | None:
    """What a client resuming at ``start`` missed, up to ``upto``; None if over ``cap`` rows."""
    dialect = connection.dialect.name
    rest = _read_range(connection, start.since, start.until, start.after, cap)
    if rest is None:
        return None
    later = _read_range(connection, start.until, upto, None, cap - len(rest))
    if later is None:
        return None
    return deliveries(rest, start.since, start.until, dialect, generation) + deliveries(
        later, start.until, upto, dialect, generation
    )


def _read_range(
    connection: Connection,
    since: Snapshot,
    until: Snapshot,
    after: tuple[int, int] | None,
    cap: int | None,
    types: Sequence[str] = domain.SOURCE_TYPES,
) -> list[FeedRow] | None:
    """Every row of ``types`` committed after ``since`` and by ``until``; None if over ``cap``."""
    rows: list[FeedRow] = []
    if since == until:
        return rows
    for row in outbox.read_between(connection, since=since, until=until, after=after, types=types):
        rows.append(row)
        if cap is not None and len(rows) > cap:
            return None
    return rows


def deliveries(
    rows: list[FeedRow], since: Snapshot, until: Snapshot, dialect: str, generation: str
) -> list[Delivery]:
    """The public events of ``rows`` of the batch (``since``, ``until``], with their ids."""
    made = []
    for row in rows:
        event = domain.from_row(row)
        if event is not None:
            position = Position(since, until, (row.key, row.position))
            made.append(
                Delivery(event, positions.encode(position, dialect=dialect, generation=generation))
            )
    return made
