"""Stock over time: a SKU's history with running totals (a window function), on-hand as of any
date, and the valuation by moving average cost, all from the latest period snapshot on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from storekeeper.reporting import balances
from storekeeper.reporting.balances import midnight
from storekeeper.reporting.domain import average_cents
from storekeeper.reporting.models import LedgerRow
from storekeeper.reporting.service import window

_ledger = cast(Table, LedgerRow.__table__)


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One movement of a SKU and the warehouse's on-hand after it."""

    movement_id: int
    moved_at: datetime
    warehouse: str
    delta: int
    reason: str
    ref: str | None
    on_hand: int


@dataclass(frozen=True, slots=True)
class ValuationRow:
    """Units of a series at a date, their average unit cost and value."""

    sku: str
    warehouse: str
    on_hand: int
    average_cost_cents: int
    value_cents: int


def stock_history(
    session: Session, *, sku: str, since: date, until: date
) -> tuple[dict[str, int], list[HistoryRow], dict[str, int]]:
    """A SKU's movements over the period with each warehouse's running on-hand, and its
    on-hand per warehouse at the start and at the end of the period (as of any date)."""
    start, end = window(since, until)
    opening = {
        wh: units for (_, wh), units in balances.on_hand(session, until=start, sku=sku).items()
    }
    running = func.sum(_ledger.c.delta).over(
        partition_by=_ledger.c.warehouse, order_by=_ledger.c.movement_id
    )
    query = (
        select(
            _ledger.c.movement_id,
            _ledger.c.moved_at,
            _ledger.c.warehouse,
            _ledger.c.delta,
            _ledger.c.reason,
            _ledger.c.ref,
            running.label("running"),
        )
        .where(_ledger.c.sku == sku, _ledger.c.moved_at >= start, _ledger.c.moved_at < end)
        .order_by(_ledger.c.movement_id)
    )
    history = [
        HistoryRow(
            r.movement_id,
            r.moved_at,
            r.warehouse,
            r.delta,
            r.reason,
            r.ref,
            opening.get(r.warehouse, 0) + int(r.running),
        )
        for r in session.execute(query)
    ]
    closing = dict(opening)
    for row in history:
        closing[row.warehouse] = row.on_hand
    return opening, history, {wh: units for wh, units in closing.items() if units}


def valuation(session: Session, *, at: date) -> list[ValuationRow]:
    """Every series' units and value at the end of ``at`` by moving average cost."""
    with balances.no_cyclic_gc():
        values = balances.values_as_of(session, until=midnight(at + timedelta(days=1)))
        return [
            ValuationRow(sku, wh, units, average_cents(units, value), value)
            for (sku, wh), (units, value) in sorted(values.items())
            if units or value
        ]
