"""Writing events to the outbox, the only way a context announces a change; reading it back in
commit order (``read_feed``), for consumers that keep a position in it, such as sync replicas."""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, Protocol, TypeVar, cast

from sqlalchemy import Table, and_, func, insert, or_, select, tuple_
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from storekeeper.db import as_aware, insert_many, utcnow
from storekeeper.events.models import OutboxEvent
from storekeeper.events.rows import FeedRow

_outbox = cast(Table, OutboxEvent.__table__)
_INSERT = insert(_outbox)
# PostgreSQL stamps each row with its writing transaction's id: see ``read_feed``.
_XID = {"xid": "pg_current_xact_id()::text::bigint"}


class Event(Protocol):
    """A domain event: a frozen dataclass naming its wire type and its aggregate."""

    type: ClassVar[str]
    aggregate_type: ClassVar[str]

    @property
    def aggregate_id(self) -> str: ...


E = TypeVar("E", bound=Event)


def decode(event_type: type[E], payload: Mapping[str, Any]) -> E:
    """The event ``payload`` was recorded from, as its producer's dataclass.

    Fields the dataclass does not know are ignored (a newer producer may add some); a field it
    needs and the payload lacks raises ``TypeError``, so a renamed field fails loudly.
    """
    names = {field.name for field in dataclasses.fields(event_type)}  # type: ignore[arg-type]
    return event_type(**{name: value for name, value in payload.items() if name in names})


def record(session: Session, *events: Event) -> None:
    """Add ``events`` to the outbox, in order; they commit (or not) with the caller's transaction.

    A Core INSERT on the session's connection (one executemany for several events), not ORM
    objects: events are written on every hot path and never read back in the same transaction.
    """
    if not events:
        return
    connection = session.connection()
    now = utcnow()
    rows = [
        {
            "event_id": event_id,
            "type": event.type,
            "aggregate_type": event.aggregate_type,
            "aggregate_id": event.aggregate_id,
            "payload": _payload(event),
            "occurred_at": now,
        }
        for event, event_id in zip(events, event_ids(len(events)), strict=True)
    ]
    postgres = connection.dialect.name == "postgresql"
    insert_many(connection, _outbox, rows, computed=_XID if postgres else None)


def event_ids(count: int) -> list[uuid.UUID]:
    """Ids for ``count`` new events: version 7 UUIDs (RFC 9562), the time in milliseconds
    first, then 74 random bits.

    Unique like random (version 4) ones, but ids written together sort together: the unique
    index on ``event_id`` then grows at its end instead of at a random leaf per event, which
    keeps a bulk writer's pages few (bench W8: an import's batches on SQLite wrote ever more
    pages as the outbox outgrew the page cache).
    """
    stamp = (time.time_ns() // 1_000_000) << 80 | 0x7 << 76 | 0b10 << 62
    noise = os.urandom(10 * count)
    ids = []
    for start in range(0, 10 * count, 10):
        random = int.from_bytes(noise[start : start + 10])
        ids.append(uuid.UUID(int=stamp | (random >> 68) << 64 | (random & ((1 << 62) - 1))))
    return ids


def last_id(session: Session) -> int:
    """The newest event's ``id`` (0 for none). On SQLite, where writers take turns and every
    state change records its event in its transaction, an unchanged value means nobody wrote
    anything in between (a bulk writer then skips reading again what it read before). Not on
    PostgreSQL: there a transaction may commit an id below one already seen."""
    return int(session.scalar(select(func.coalesce(func.max(_outbox.c.id), 0))) or 0)


_FIELDS: dict[type, tuple[str, ...]] = {}


def _payload(event: Event) -> dict[str, Any]:
    """The event's fields as a dict: ``dataclasses.asdict`` (which deep-copies every value)
    only when a field holds a container or a dataclass; flat events (nearly all, and those an
    import writes 100,000s of) are a plain field-by-field copy, the same JSON for a fraction
    of the time."""
    names = _FIELDS.get(type(event))
    if names is None:
        names = tuple(f.name for f in dataclasses.fields(event))  # type: ignore[arg-type]
        _FIELDS[type(event)] = names
    values = {name: getattr(event, name) for name in names}
    for value in values.values():
        if type(value) in _FLAT:  # most values: no need to ask whether it is a dataclass
            continue
        if isinstance(value, (list, tuple, dict, set)) or dataclasses.is_dataclass(value):
            return dataclasses.asdict(event)  # type: ignore[call-overload, no-any-return]
    return values


_FLAT = frozenset({str, int, float, bool, type(None)})


# --- reading in commit order -----------------------------------------------------------------
#
# Rows get ``id`` at INSERT time, not at commit. On PostgreSQL a transaction holding id 50 may
# commit after one holding id 51 was read, so "id > last position" would skip 50 for good. So
# positions are *snapshots* instead, as in PgQ: each PostgreSQL row carries its transaction id
# (``xid``), and a snapshot (``pg_current_snapshot()``: xmin, xmax, the ids in progress) says
# exactly which transactions had committed when it was taken. The rows committed between two
# snapshots are those whose xid the later one sees and the earlier one did not; nothing waits
# for a transaction still open, and nothing committed is ever skipped. Within such a batch rows
# come in (xid, id) order. On SQLite writers are serialized (BEGIN IMMEDIATE), so id order *is*
# commit order: there a snapshot is just "every id below xmax" and the row's order key is its id.


@dataclasses.dataclass(frozen=True, slots=True)
class Snapshot:
    """Which writes had committed at one moment: order keys below ``xmax`` and not in ``xip``."""

    xmin: int
    xmax: int
    xip: tuple[int, ...] = ()

    def sees(self, key: int) -> bool:
        """Whether the row with order key ``key`` had committed when this snapshot was taken."""
        return key < self.xmax and key not in self.xip

    def saw_all_below(self, key: int) -> bool:
        """Whether every row with an order key below ``key`` had committed by this snapshot (a
        reader there has had them all, so their pruning took nothing from it)."""
        return key <= self.xmax and all(x >= key for x in self.xip)


def snapshot(connection: Connection) -> Snapshot:
    """The outbox's commit state now, to read the feed up to (and later on from)."""
    if connection.dialect.name == "postgresql":
        text = connection.execute(sql_text("SELECT pg_current_snapshot()::text")).scalar_one()
        xmin, xmax, xip = text.split(":")
        return Snapshot(int(xmin), int(xmax), tuple(int(x) for x in xip.split(",") if x))
    top = connection.execute(select(func.coalesce(func.max(_outbox.c.id), 0))).scalar_one()
    return Snapshot(top + 1, top + 1)


def read_feed(
    connection: Connection,
    *,
    since: Snapshot,
    until: Snapshot,
    after: tuple[int, int] | None,
    types: Sequence[str],
    aggregates: Sequence[tuple[str, str | None]],
    limit: int,
) -> list[FeedRow]:
    """Rows committed after ``since`` and by ``until``, in feed order, after ``after``.

    Only events of ``types`` whose aggregate matches one of ``aggregates``: (aggregate type,
    None) for every aggregate of the type, or (aggregate type, suffix) for those whose id ends
    in the suffix. Read the batch up to ``until`` page by page (passing the last row's
    ``(key, position)`` as ``after``), then go on with ``since=until``: every committed row comes
    exactly once. No ``aggregates`` at all: every aggregate (the live hub filters per client).
    """
    postgres = connection.dialect.name == "postgresql"
    key = _outbox.c.xid if postgres else _outbox.c.id
    matches = []
    for aggregate_type, suffix in aggregates:
        if suffix is None:
            matches.append(_outbox.c.aggregate_type == aggregate_type)
        else:
            escaped = suffix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            matches.append(
                and_(
                    _outbox.c.aggregate_type == aggregate_type,
                    _outbox.c.aggregate_id.like(f"%{escaped}", escape="\\"),
                )
            )
    query = (
        select(
            key.label("key"),
            _outbox.c.id,
            _outbox.c.type,
            _outbox.c.aggregate_type,
            _outbox.c.aggregate_id,
            _outbox.c.payload,
            _outbox.c.occurred_at,
        )
        .where(
            # new since ``since`` ...
            key >= since.xmin,
            or_(key >= since.xmax, key.in_(since.xip)),
            # ... and committed by ``until``
            key < until.xmax,
            key.not_in(until.xip),
            _outbox.c.type.in_(types),
            *([or_(*matches)] if matches else []),
        )
        .order_by(key, _outbox.c.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(
            tuple_(key, _outbox.c.id) > tuple_(*after) if postgres else _outbox.c.id > after[1]
        )
    return [
        FeedRow(
            row.key,
            row.id,
            row.type,
            row.aggregate_type,
            row.aggregate_id,
            row.payload,
            as_aware(row.occurred_at),
        )
        for row in connection.execute(query)
    ]


def read_between(
    connection: Connection,
    *,
    since: Snapshot,
    until: Snapshot,
    types: Sequence[str],
    aggregates: Sequence[tuple[str, str | None]] = (),
    after: tuple[int, int] | None = None,
    page: int = 1000,
) -> Iterator[FeedRow]:
    """Every row ``read_feed`` would give between the two snapshots, read ``page`` at a time.

    For readers that want the whole range (live updates, gRPC ``WatchStock``); the sync feed
    reads one page per pull instead. Stop iterating to stop reading.
    """
    while True:
        rows = read_feed(
            connection,
            since=since,
            until=until,
            after=after,
            types=types,
            aggregates=aggregates,
            limit=page,
        )
        yield from rows
        if len(rows) < page:
            return
        after = (rows[-1].key, rows[-1].position)
