"""The reporting consumer: old events still decode, a late movement reopens closed months."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from storekeeper.bootstrap import Container
from storekeeper.events.outbox import decode
from storekeeper.inventory.events import StockChanged
from storekeeper.reporting import balances, handlers, readmodel, stock
from storekeeper.reporting.models import LevelRow, Period

NOW = datetime.now(UTC)


def test_an_event_stored_before_it_carried_the_movement_updates_the_levels_only(
    container: Container,
) -> None:
    old = {
        "sku": "TEA",
        "warehouse": "BER",
        "on_hand": 7,
        "reserved": 2,
        "reason": "receipt",
        "ref": None,
    }
    event = decode(StockChanged, old)
    assert event.movement_id is None and event.delta == 0

    with container.db.transaction() as session:
        handlers.record_stock_change(session, event)

    with container.db.reading() as session:
        level = session.get(LevelRow, ("TEA", "BER"))
        assert (level.on_hand, level.reserved) == (7, 2)
        assert stock.valuation(session, at=NOW.date()) == []


def _fact(movement_id: int, delta: int, at: datetime, cost: int | None = None) -> readmodel.Fact:
    return readmodel.Fact(movement_id, "TEA", "BER", delta, "receipt", None, cost, at)


def test_a_movement_arriving_in_a_closed_month_reopens_it_and_the_reports_stay_right(
    container: Container,
) -> None:
    long_ago = NOW - timedelta(days=100)
    with container.db.transaction() as session:
        readmodel.record_facts(session, [_fact(1, 10, long_ago, 300)])
        assert balances.close_periods(session, now=NOW) >= 3
    with container.db.transaction() as session:  # a relay that was down delivers it late
        readmodel.record_facts(session, [_fact(2, 10, long_ago + timedelta(days=1), 100)])

    with container.db.reading() as session:
        periods = session.execute(select(func.count()).select_from(Period)).scalar_one()
        rows = stock.valuation(session, at=NOW.date())
    assert periods == 0
    assert [(r.on_hand, r.average_cost_cents, r.value_cents) for r in rows] == [(20, 200, 4000)]

    with container.db.transaction() as session:
        assert balances.close_periods(session, now=NOW) >= 3
    with container.db.reading() as session:
        assert stock.valuation(session, at=NOW.date()) == rows
