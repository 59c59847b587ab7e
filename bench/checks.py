"""Proof through the database, after a W2 run or a soak, that no unit was oversold."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import distinct, func, select, text
from sqlalchemy.orm import Session

from storekeeper.db import Database
from storekeeper.ordering.models import Order, OrderLine

Key = tuple[str, str]

_STOCK = "SELECT sku, warehouse_code, on_hand, reserved FROM inventory_stock"
_LEDGER = (
    "SELECT sku, warehouse_code, SUM(delta) FROM inventory_movement GROUP BY sku, warehouse_code"
)
_RECEIVED = "SELECT sku, SUM(delta) FROM inventory_movement WHERE reason = 'receipt' GROUP BY sku"
_ACTIVE_RESERVATIONS = (
    "SELECT sku, warehouse_code, SUM(qty) FROM inventory_reservation WHERE status = 'active' "
    "GROUP BY sku, warehouse_code"
)
_ACCEPTED_LINES = (
    "SELECT l.sku, l.warehouse, SUM(l.qty) FROM ordering_order_line l "
    "JOIN ordering_order o ON o.id = l.order_id WHERE o.status <> 'cancelled' "
    "GROUP BY l.sku, l.warehouse"
)
# A shipped order's reservation is fulfilled (its units left as sales): only open orders hold one.
_OPEN_LINES = (
    "SELECT l.sku, l.warehouse, SUM(l.qty) FROM ordering_order_line l "
    "JOIN ordering_order o ON o.id = l.order_id WHERE o.status NOT IN ('cancelled', 'shipped') "
    "GROUP BY l.sku, l.warehouse"
)
_ACCEPTED_ORDERS = "SELECT COUNT(*) FROM ordering_order WHERE status <> 'cancelled'"


@dataclass(frozen=True, slots=True)
class Integrity:
    """What the database says after a run; ``oversold_units`` must be 0."""

    stock_rows: int
    accepted_orders: int
    reserved_beyond_on_hand: int
    """Units reserved in a stock row beyond what that row has on hand."""
    accepted_beyond_received: int
    """Units of a SKU in accepted orders beyond the units of it ever received."""
    ledger_mismatches: int
    """Stock rows whose on-hand differs from the sum of their movements."""
    reservation_mismatches: int
    """Stock rows whose ``reserved`` differs from their active reservations."""
    order_line_mismatches: int
    """(SKU, warehouse) pairs whose open order units differ from their active reservations."""

    @property
    def oversold_units(self) -> int:
        """Units promised that do not exist."""
        return self.reserved_beyond_on_hand + self.accepted_beyond_received

    @property
    def ok(self) -> bool:
        """Nothing oversold and every total agrees with its ledger."""
        return not (
            self.oversold_units
            or self.ledger_mismatches
            or self.reservation_mismatches
            or self.order_line_mismatches
        )

    def to_json(self) -> dict[str, Any]:
        """The figures plus the verdict."""
        return {**asdict(self), "oversold_units": self.oversold_units, "ok": self.ok}


def _pairs(session: Session, sql: str) -> dict[Key, int]:
    return {(a, b): int(n or 0) for a, b, n in session.execute(text(sql))}


def verify(db: Database) -> Integrity:
    """Check every stock row against its movements, reservations and the accepted orders."""
    with db.reading() as session:
        stock = {(s, w): (int(h), int(r)) for s, w, h, r in session.execute(text(_STOCK))}
        ledger = _pairs(session, _LEDGER)
        reservations = _pairs(session, _ACTIVE_RESERVATIONS)
        lines = _pairs(session, _ACCEPTED_LINES)
        open_lines = _pairs(session, _OPEN_LINES)
        received = {s: int(n or 0) for s, n in session.execute(text(_RECEIVED))}
        accepted_orders = int(session.execute(text(_ACCEPTED_ORDERS)).scalar_one())
    accepted_per_sku: dict[str, int] = defaultdict(int)
    for (sku, _warehouse), units in lines.items():
        accepted_per_sku[sku] += units
    return Integrity(
        stock_rows=len(stock),
        accepted_orders=accepted_orders,
        reserved_beyond_on_hand=sum(max(0, r - h) for h, r in stock.values()),
        accepted_beyond_received=sum(
            max(0, units - received.get(sku, 0)) for sku, units in accepted_per_sku.items()
        ),
        ledger_mismatches=sum(1 for k, (h, _r) in stock.items() if ledger.get(k, 0) != h),
        reservation_mismatches=sum(
            1 for k, (_h, r) in stock.items() if reservations.get(k, 0) != r
        ),
        order_line_mismatches=sum(
            1
            for k in open_lines.keys() | reservations.keys()
            if open_lines.get(k) != reservations.get(k)
        ),
    )


@dataclass(frozen=True, slots=True)
class SkuOrders:
    """The accepted orders that contain one SKU."""

    orders: int
    units: int
    last_created_at: datetime | None


def orders_of(db: Database, sku: str) -> SkuOrders:
    """How many accepted orders (and units) contain ``sku``, and when the last was placed."""
    with db.reading() as session:
        count, last = session.execute(
            select(func.count(distinct(Order.id)), func.max(Order.created_at))
            .join(OrderLine, OrderLine.order_id == Order.id)
            .where(OrderLine.sku == sku, Order.status != "cancelled")
        ).one()
        units = session.scalar(
            select(func.coalesce(func.sum(OrderLine.qty), 0))
            .join(Order, OrderLine.order_id == Order.id)
            .where(OrderLine.sku == sku, Order.status != "cancelled")
        )
    return SkuOrders(int(count), int(units or 0), last)
