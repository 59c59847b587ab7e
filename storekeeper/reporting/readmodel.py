"""Writing reporting's read models: from each ``stock.changed`` event, and rebuilt from the
inventory service for a ledger that existed before reporting did (``storekeeper reports rebuild``).

Sales are priced when they are read, from the most honest source there is: a sale that shipped
an order (reference ``order:<id>``) at the order line's ``unit_price_cents`` (what the customer
paid); any other sale (over the counter, offline through sync, or recorded by hand) at the
catalog's price when reporting reads it, which is the price at the till unless the price changed
in the seconds before the event was delivered (or, for a rebuild, since the sale).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storekeeper.catalog import service as catalog_service
from storekeeper.db import Database, insert_ignoring_conflicts
from storekeeper.inventory import history as inventory_history
from storekeeper.inventory import levels as inventory_levels
from storekeeper.inventory import warehouses as inventory_warehouses
from storekeeper.ordering import service as ordering_service
from storekeeper.reporting import balances
from storekeeper.reporting.models import LedgerRow, LevelRow, Period, SalesMonthRow, SnapshotRow

_ledger = cast(Table, LedgerRow.__table__)
_level = cast(Table, LevelRow.__table__)
_period = cast(Table, Period.__table__)
_snapshot = cast(Table, SnapshotRow.__table__)
_sales_month = cast(Table, SalesMonthRow.__table__)

REBUILD_PAGE = 5000


@dataclass(frozen=True, slots=True)
class Fact:
    """One ledger movement as the event (or the inventory service) tells it."""

    movement_id: int
    sku: str
    warehouse: str
    delta: int
    reason: str
    ref: str | None
    unit_cost_cents: int | None
    moved_at: datetime


class _Prices:
    """Unit prices of sales, looked up once per order and per SKU."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.orders: dict[str, dict[tuple[str, str], tuple[int, str]]] = {}
        self.catalog: dict[str, tuple[int, str]] = {}

    def load_catalog(self, skus: Iterable[str]) -> None:
        missing = set(skus) - self.catalog.keys()
        if missing:
            self.catalog.update(catalog_service.prices(self.session, skus=missing))

    def of(self, fact: Fact) -> tuple[int, str] | None:
        if fact.ref and fact.ref.startswith("order:"):
            if fact.ref not in self.orders:
                self.orders[fact.ref] = ordering_service.line_prices(self.session, ref=fact.ref)
            found = self.orders[fact.ref].get((fact.sku, fact.warehouse))
            if found is not None:
                return found
        self.load_catalog([fact.sku])
        return self.catalog.get(fact.sku)


def _row(fact: Fact, prices: _Prices) -> dict[str, object]:
    value: int | None = None
    currency: str | None = None
    if fact.reason == "sale":
        price = prices.of(fact)
        if price is not None:
            value, currency = -fact.delta * price[0], price[1]
    return {
        "movement_id": fact.movement_id,
        "sku": fact.sku,
        "warehouse": fact.warehouse,
        "delta": fact.delta,
        "reason": fact.reason,
        "ref": fact.ref,
        "unit_cost_cents": fact.unit_cost_cents,
        "sale_value_cents": value,
        "currency": currency,
        "moved_at": fact.moved_at,
    }


def record_facts(session: Session, facts: list[Fact]) -> None:
    """Copy movements into the read model; a movement already there is left as it is."""
    if not facts:
        return
    prices = _Prices(session)
    prices.load_catalog({f.sku for f in facts if f.reason == "sale"})
    dialect = session.get_bind().dialect.name
    session.execute(insert_ignoring_conflicts(dialect, _ledger), [_row(f, prices) for f in facts])
    closed = session.execute(select(func.max(_period.c.ends_on))).scalar_one()
    earliest = min(f.moved_at for f in facts)
    if closed is not None and earliest < balances.midnight(closed):
        balances.reopen_from(session, moved_at=earliest)


def set_level(session: Session, *, sku: str, warehouse: str, on_hand: int, reserved: int) -> None:
    """Keep the latest levels of a series (events of one series arrive in order)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    values = {"on_hand": on_hand, "reserved": reserved}
    session.execute(
        dialect.insert(_level)
        .values(sku=sku, warehouse=warehouse, **values)
        .on_conflict_do_update(index_elements=["sku", "warehouse"], set_=values)
    )


def rebuild(db: Database, *, progress: Callable[[int], None] | None = None) -> int:
    """Copy the movements the read model lacks from the inventory service, refresh the levels
    and close the periods anew; returns how many movements were copied.

    Movements already copied keep the value they were priced at when they were sold (a
    rebuild can only price a missing sale at today's catalog price). One transaction per page
    of movements, so the write lock is never held for the whole ledger; events delivered
    meanwhile are copied once (the movement id is the key).
    """
    with db.transaction() as session:
        for table in (_sales_month, _snapshot, _period):
            session.execute(delete(table))
        had = session.execute(select(func.count()).select_from(_ledger)).scalar_one()
    after = 0
    while True:
        with db.transaction() as session:
            page = inventory_history.list_movements_after(
                session, after_id=after, limit=REBUILD_PAGE
            )
            record_facts(
                session,
                [
                    Fact(
                        m.id,
                        m.sku,
                        m.warehouse,
                        m.delta,
                        m.reason,
                        m.ref,
                        m.unit_cost_cents,
                        m.created_at,
                    )
                    for m in page
                ],
            )
        if not page:
            break
        after = page[-1].id
        if progress is not None:
            progress(len(page))
    with db.transaction() as session:
        for warehouse in inventory_warehouses.list_warehouses(session):
            cursor: str | None = None
            while True:
                rows, cursor = inventory_levels.list_levels(
                    session,
                    warehouse=warehouse.code,
                    after_sku=cursor,
                    limit=inventory_levels.MAX_LEVELS_PAGE,
                )
                for row in rows:
                    set_level(
                        session,
                        sku=row.sku,
                        warehouse=warehouse.code,
                        on_hand=row.on_hand,
                        reserved=row.reserved,
                    )
                if cursor is None:
                    break
        balances.close_periods(session)
        has = session.execute(select(func.count()).select_from(_ledger)).scalar_one()
    return int(has - had)
