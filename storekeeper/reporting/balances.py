"""Balances as of a moment: the latest period snapshot before it plus the movements after it.

A period is a calendar month (UTC); its snapshot holds every series' closing units and value.
"As of" reads never scan the ledger from its start once periods are closed: one snapshot, then
at most a month (and the days since) of movements. A movement that arrives late, inside a closed
period, reopens that period and every later one (:func:`reopen_from`); the next
:func:`close_periods` closes them again.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import (
    Date,
    Insert,
    Select,
    Subquery,
    Table,
    delete,
    func,
    insert,
    literal,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from storekeeper.db import utcnow
from storekeeper.reporting.domain import Book, MoveRow, Position, Series
from storekeeper.reporting.models import LedgerRow, LevelRow, Period, SalesMonthRow, SnapshotRow

_ledger = cast(Table, LedgerRow.__table__)
_level = cast(Table, LevelRow.__table__)
_period = cast(Table, Period.__table__)
_snapshot = cast(Table, SnapshotRow.__table__)
_sales_month = cast(Table, SalesMonthRow.__table__)

CLOSE_AFTER = timedelta(hours=1)
"""How long after a month ends it is closed: events still in the outbox by then reopen it."""


def midnight(day: date) -> datetime:
    """The start of ``day`` in UTC."""
    return datetime.combine(day, time(), tzinfo=UTC)


def next_month(day: date) -> date:
    """The first day of the month after ``day``'s."""
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def month_start(ends_on: date) -> date:
    """The first day of the period (month) that ends before ``ends_on``."""
    return (ends_on - timedelta(days=1)).replace(day=1)


def closed_months_within(
    session: Session, *, start: datetime, end: datetime
) -> tuple[datetime, datetime] | None:
    """The whole closed months inside ``start``..``end`` as one span (its first month's start,
    its last month's end), if there is one. Closed periods run without a gap from the first
    movement's month, so every month of the span is closed (or before any movement)."""
    last = session.execute(select(func.max(_period.c.ends_on))).scalar_one()
    if last is None:
        return None
    day = start.astimezone(UTC).date()
    first = day if start == midnight(day) and day.day == 1 else next_month(day)
    after = min(last, end.astimezone(UTC).date().replace(day=1))
    if first >= after:
        return None
    return midnight(first), midnight(after)


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the block. A report that reads tens of
    thousands of rows (or makes a million tuples) would otherwise run it many times over every
    object alive: most of a valuation's time, a third of daily demand's (bench W9). Rows of
    strings, dates and ints form no cycles, so nothing is left for it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def snapshot_before(session: Session, *, until: datetime) -> date | None:
    """The end of the latest closed period that ends at or before ``until``, if any."""
    found = session.execute(
        select(func.max(_period.c.ends_on)).where(_period.c.ends_on <= until.date())
    ).scalar_one()
    return cast(date | None, found)


def balance_rows(
    session: Session, *, until: datetime, sku: str | None = None, every_series: bool = False
) -> Subquery:
    """Rows (sku, warehouse, units) whose sum per series is its on-hand before ``until``: the
    latest snapshot's rows UNION ALL the movements after it. Every stock report groups these
    (low stock with HAVING, dead stock with an anti-join, history for its opening balance).

    ``every_series`` adds a row of 0 units for every series the levels know, so that one
    emptied before the snapshot (which leaves empty series out) still has a sum: 0."""
    ends_on = snapshot_before(session, until=until)
    moves = select(_ledger.c.sku, _ledger.c.warehouse, _ledger.c.delta.label("units")).where(
        _ledger.c.moved_at < until
    )
    if sku is not None:
        moves = moves.where(_ledger.c.sku == sku)
    parts: list[Select[Any]] = [moves]
    if every_series:
        parts.append(select(_level.c.sku, _level.c.warehouse, literal(0).label("units")))
    if ends_on is None:
        return union_all(*parts).subquery("balance_rows")
    snapshot = select(
        _snapshot.c.sku, _snapshot.c.warehouse, _snapshot.c.on_hand.label("units")
    ).where(_snapshot.c.ends_on == ends_on)
    if sku is not None:
        snapshot = snapshot.where(_snapshot.c.sku == sku)
    parts[0] = moves.where(_ledger.c.moved_at >= midnight(ends_on))
    return union_all(snapshot, *parts).subquery("balance_rows")


def on_hand(session: Session, *, until: datetime, sku: str | None = None) -> dict[Series, int]:
    """Units of every series before ``until`` (series that held none left out)."""
    rows = balance_rows(session, until=until, sku=sku)
    query = (
        select(rows.c.sku, rows.c.warehouse, func.sum(rows.c.units))
        .group_by(rows.c.sku, rows.c.warehouse)
        .having(func.sum(rows.c.units) != 0)
    )
    with no_cyclic_gc():
        found = session.connection().execute(query).all()
        return {(sku_, wh): int(units) for sku_, wh, units in found}


def _moves(
    session: Session, *, since: datetime | None, until: datetime, sku: str | None
) -> list[MoveRow]:
    """The movements in ``since``..``until`` as rows, in ledger order."""
    query = select(
        _ledger.c.sku,
        _ledger.c.warehouse,
        _ledger.c.delta,
        _ledger.c.reason,
        _ledger.c.ref,
        _ledger.c.unit_cost_cents,
        _ledger.c.movement_id,
    ).where(_ledger.c.moved_at < until)
    if since is not None:
        query = query.where(_ledger.c.moved_at >= since)
    if sku is not None:
        query = query.where(_ledger.c.sku == sku)
    # Sorted here, not by ORDER BY movement_id: that tempts the planner to walk the whole
    # table in key order instead of the time index over the window. (Not streamed: readers
    # run in autocommit on PostgreSQL, where a server-side cursor needs a transaction.) The
    # rows are replayed as they come, fetched at once: no object is made per movement.
    rows = session.connection().execute(query).all()
    return cast(list[MoveRow], sorted(rows, key=itemgetter(6)))


def positions_as_of(
    session: Session, *, until: datetime, sku: str | None = None
) -> dict[Series, Position]:
    """Units and value (moving average cost) of every series before ``until``."""
    return {
        series: Position(units, value)
        for series, (units, value) in values_as_of(session, until=until, sku=sku).items()
    }


def values_as_of(
    session: Session, *, until: datetime, sku: str | None = None
) -> dict[Series, tuple[int, int]]:
    """(units, value in cents by moving average cost) of every series before ``until``: the
    latest snapshot's rows, then the movements after it replayed onto the series they touch
    (one pass over at most a month and some days of the ledger). The other series are the
    snapshot's rows as they are: no object is made for each of the thousands."""
    with no_cyclic_gc():
        return _values_as_of(session, until=until, sku=sku)


def _values_as_of(
    session: Session, *, until: datetime, sku: str | None
) -> dict[Series, tuple[int, int]]:
    ends_on = snapshot_before(session, until=until)
    values: dict[Series, tuple[int, int]] = {}
    if ends_on is not None:
        query = select(
            _snapshot.c.sku, _snapshot.c.warehouse, _snapshot.c.on_hand, _snapshot.c.value_cents
        ).where(_snapshot.c.ends_on == ends_on)
        if sku is not None:
            query = query.where(_snapshot.c.sku == sku)
        values = {
            (sku_, wh): (units, value)
            for sku_, wh, units, value in session.connection().execute(query).all()
        }
    since = midnight(ends_on) if ends_on is not None else None
    moves = _moves(session, since=since, until=until, sku=sku)
    book = Book(opening=values).apply_rows(moves)
    values.update((s, (p.on_hand, p.value_cents)) for s, p in book.positions.items())
    return values


def reopen_from(session: Session, *, moved_at: datetime) -> None:
    """Drop the closed periods a movement at ``moved_at`` falls in or before."""
    day = moved_at.astimezone(UTC).date()
    session.execute(delete(_sales_month).where(_sales_month.c.ends_on > day))
    session.execute(delete(_snapshot).where(_snapshot.c.ends_on > day))
    session.execute(delete(_period).where(_period.c.ends_on > day))


def close_periods(session: Session, *, now: datetime | None = None) -> int:
    """Close every month that ended (``CLOSE_AFTER`` ago) and is not closed yet; returns how many.

    Each closing replays only the month's movements onto the previous month's snapshot, and
    sums the month's sales per series and currency (one ``INSERT … SELECT … GROUP BY``).
    """
    now = now or utcnow()
    last = session.execute(select(func.max(_period.c.ends_on))).scalar_one()
    if last is None:
        first = session.execute(select(func.min(_ledger.c.moved_at))).scalar_one()
        if first is None:
            return 0
        ends_on = next_month(first.date())
    else:
        ends_on = next_month(last)
    closed = 0
    while midnight(ends_on) + CLOSE_AFTER <= now:
        positions = positions_as_of(session, until=midnight(ends_on))
        session.execute(insert(_period).values(ends_on=ends_on, closed_at=utcnow()))
        rows = [
            {
                "ends_on": ends_on,
                "sku": sku,
                "warehouse": warehouse,
                "on_hand": position.on_hand,
                "value_cents": position.value_cents,
            }
            for (sku, warehouse), position in positions.items()
            if position.on_hand or position.value_cents
        ]
        if rows:
            session.execute(insert(_snapshot), rows)
        session.execute(_close_sales(ends_on))
        closed += 1
        ends_on = next_month(ends_on)
    return closed


def _close_sales(ends_on: date) -> Insert:
    """The period's sales summed per series and currency into ``reporting_sales_month``."""
    currency = func.coalesce(_ledger.c.currency, "")
    sums = (
        select(
            _ledger.c.sku,
            _ledger.c.warehouse,
            currency,
            literal(ends_on, Date),
            func.sum(-_ledger.c.delta),
            func.coalesce(func.sum(_ledger.c.sale_value_cents), 0),
        )
        .where(
            _ledger.c.reason == "sale",
            _ledger.c.moved_at >= midnight(month_start(ends_on)),
            _ledger.c.moved_at < midnight(ends_on),
        )
        .group_by(_ledger.c.sku, _ledger.c.warehouse, currency)
    )
    columns = ["sku", "warehouse", "currency", "ends_on", "units", "value_cents"]
    return insert(_sales_month).from_select(columns, sums)
