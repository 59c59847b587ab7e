"""Stock levels as they stand: per SKU and warehouse, and the ledger sums they must equal."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import cast

from sqlalchemy import ColumnElement, Table, func, or_, select, tuple_
from sqlalchemy.orm import Session

from storekeeper.catalog import service as catalog_service
from storekeeper.inventory.models import Movement, StockLevel, Warehouse

_stock = cast(Table, StockLevel.__table__)
_warehouse = cast(Table, Warehouse.__table__)

MAX_LEVELS_PAGE = 500
"""The most rows ``list_levels`` gives at once (a count sheet's worth)."""


@dataclass(frozen=True, slots=True)
class Level:
    """Stock of one SKU in one warehouse."""

    warehouse: str
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        """Units that can still be promised: on-hand less reserved."""
        return self.on_hand - self.reserved


@dataclass(frozen=True, slots=True)
class StockTotals:
    """Stock of one SKU: the level in each warehouse, and their sums."""

    sku: str
    warehouses: tuple[Level, ...]

    @property
    def on_hand(self) -> int:
        """Units on hand in all these warehouses."""
        return sum(level.on_hand for level in self.warehouses)

    @property
    def reserved(self) -> int:
        """Units reserved for orders in all these warehouses."""
        return sum(level.reserved for level in self.warehouses)

    @property
    def available(self) -> int:
        """Units that can still be promised: on-hand less reserved."""
        return self.on_hand - self.reserved


@dataclass(frozen=True, slots=True)
class SkuLevel:
    """Stock of one SKU in a warehouse named by the caller (a row of a warehouse's list)."""

    sku: str
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        """Units that can still be promised: on-hand less reserved."""
        return self.on_hand - self.reserved


def where_row(sku: str, warehouse: str) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """The conditions that pick the stock row of ``sku`` in ``warehouse``."""
    return (_stock.c.sku == sku, _stock.c.warehouse_code == warehouse)


def require_sku(session: Session, *, sku: str) -> None:
    """Raise ``UnknownSku`` unless a product (active or archived) has this SKU."""
    if not catalog_service.exists(session, sku=sku):
        raise catalog_service.UnknownSku(f"no product with SKU {sku}")


def known_skus(session: Session, *, skus: Collection[str]) -> set[str]:
    """Those of ``skus`` that a product (active or archived) has."""
    return set(catalog_service.names(session, skus=skus))


def level(session: Session, *, sku: str, warehouse: str) -> Level:
    """Current stock of ``sku`` in ``warehouse`` (zero if never stocked)."""
    row = session.execute(
        select(_stock.c.on_hand, _stock.c.reserved).where(*where_row(sku, warehouse))
    ).one_or_none()
    return Level(warehouse, row.on_hand, row.reserved) if row else Level(warehouse, 0, 0)


def stock_of(session: Session, *, sku: str) -> list[Level]:
    """Stock of ``sku`` in every warehouse that ever held it."""
    require_sku(session, sku=sku)
    rows = session.execute(
        select(_stock.c.warehouse_code, _stock.c.on_hand, _stock.c.reserved)
        .where(_stock.c.sku == sku)
        .order_by(_stock.c.warehouse_code)
    )
    return [Level(r.warehouse_code, r.on_hand, r.reserved) for r in rows]


def stock_totals(session: Session, *, sku: str, warehouse: str | None = None) -> StockTotals:
    """Stock of ``sku`` per warehouse and in total, only in ``warehouse`` if one is given."""
    found = stock_of(session, sku=sku)
    if warehouse is not None:
        found = [lv for lv in found if lv.warehouse == warehouse]
    return StockTotals(sku, tuple(found))


def skus_on_hand(session: Session, *, warehouse: str) -> list[str]:
    """SKUs with stock on hand in ``warehouse`` (their ranges bound its rooms' temperature)."""
    query = select(_stock.c.sku).where(_stock.c.warehouse_code == warehouse, _stock.c.on_hand > 0)
    return list(session.scalars(query))


def ledger_totals(session: Session, *, skus: list[str] | None = None) -> dict[tuple[str, str], int]:
    """Sum of movements per (SKU, warehouse): what on-hand must equal."""
    query = select(Movement.sku, Movement.warehouse_code, func.sum(Movement.delta)).group_by(
        Movement.sku, Movement.warehouse_code
    )
    if skus:
        query = query.where(Movement.sku.in_(skus))
    return {(sku, wh): int(total) for sku, wh, total in session.execute(query)}


def list_levels(
    session: Session,
    *,
    warehouse: str,
    sku_prefix: str | None = None,
    skus: Collection[str] | None = None,
    after_sku: str | None = None,
    limit: int = 50,
) -> tuple[list[SkuLevel], str | None]:
    """Stock rows of ``warehouse`` in SKU order (those whose SKU starts with ``sku_prefix``, any
    case, or is one of ``skus``, when either is given); and the ``after_sku`` of the next page.

    Keyset paging on (warehouse, SKU), served by ``ix_inventory_stock_warehouse``; never OFFSET.
    """
    limit = max(1, min(limit, MAX_LEVELS_PAGE))
    query = (
        select(_stock.c.sku, _stock.c.on_hand, _stock.c.reserved)
        .where(_stock.c.warehouse_code == warehouse)
        .order_by(_stock.c.sku)
        .limit(limit + 1)
    )
    wanted: list[ColumnElement[bool]] = []
    if sku_prefix:
        escaped = sku_prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        wanted.append(func.lower(_stock.c.sku).like(f"{escaped}%", escape="\\"))
    if skus is not None:
        wanted.append(_stock.c.sku.in_(sorted(skus)))
    if wanted:
        query = query.where(or_(*wanted))
    if after_sku is not None:
        query = query.where(_stock.c.sku > after_sku)
    rows = session.execute(query).all()
    found = [SkuLevel(row.sku, row.on_hand, row.reserved) for row in rows[:limit]]
    return found, (found[-1].sku if len(rows) > limit else None)


@dataclass(frozen=True, slots=True)
class WarehouseTotals:
    """Stock of all SKUs in one warehouse: how many SKUs have units on hand, and the units.

    ``stamp`` (stock rows, sum of their versions) changes whenever any stock row of the
    warehouse is added or changed: every change bumps its row's version. A reader that derives
    something costly from the warehouse's rows may keep it while the stamp stays the same.
    """

    warehouse: str
    skus: int
    on_hand: int
    reserved: int
    stamp: tuple[int, int] = (0, 0)

    @property
    def available(self) -> int:
        """Units that can still be promised: on-hand less reserved."""
        return self.on_hand - self.reserved


def totals_by_warehouse(
    session: Session, *, warehouses: Collection[str] | None = None
) -> list[WarehouseTotals]:
    """Units per warehouse (every warehouse, or those of ``warehouses``), in code order.

    One GROUP BY over the stock rows (never the ledger); a warehouse without stock shows zeros.
    """
    query = (
        select(
            _warehouse.c.code,
            func.count(_stock.c.sku).filter(_stock.c.on_hand > 0),
            func.coalesce(func.sum(_stock.c.on_hand), 0),
            func.coalesce(func.sum(_stock.c.reserved), 0),
            func.count(_stock.c.sku),
            func.coalesce(func.sum(_stock.c.version), 0),
        )
        .select_from(_warehouse.outerjoin(_stock, _stock.c.warehouse_code == _warehouse.c.code))
        .group_by(_warehouse.c.code)
        .order_by(_warehouse.c.code)
    )
    if warehouses is not None:
        query = query.where(_warehouse.c.code.in_(sorted(warehouses)))
    return [
        WarehouseTotals(code, int(skus), int(on_hand), int(reserved), (int(rows), int(versions)))
        for code, skus, on_hand, reserved, rows, versions in session.execute(query)
    ]


def on_hand_by_sku(
    session: Session, *, warehouses: Collection[str] | None = None
) -> list[tuple[str, str, int]]:
    """(warehouse, SKU, on-hand) of every stock row with units on hand, for valuing stock.

    Plain Core tuples from the stock rows (one per SKU and warehouse, never the ledger):
    a caller may read 100,000s of them, so no ORM objects are built.
    """
    query = select(_stock.c.warehouse_code, _stock.c.sku, _stock.c.on_hand).where(
        _stock.c.on_hand > 0
    )
    if warehouses is not None:
        query = query.where(_stock.c.warehouse_code.in_(sorted(warehouses)))
    return [(wh, sku, int(on_hand)) for wh, sku, on_hand in session.execute(query)]


@dataclass(frozen=True, slots=True)
class LowStock:
    """A SKU in a warehouse whose available units are at or below a threshold."""

    sku: str
    warehouse: str
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        """Units that can still be promised: on-hand less reserved."""
        return self.on_hand - self.reserved

    @property
    def key(self) -> tuple[int, str, str]:
        """Where the next page starts: pass as ``after`` to :func:`low_stock`."""
        return (self.available, self.sku, self.warehouse)


def low_stock(
    session: Session,
    *,
    threshold: int,
    warehouses: Collection[str] | None = None,
    after: tuple[int, str, str] | None = None,
    limit: int = 20,
) -> list[LowStock]:
    """Stock rows with at most ``threshold`` units available, fewest first (then SKU and
    warehouse); keyset-paged by ``after`` (a row's ``key``), never OFFSET."""
    available = _stock.c.on_hand - _stock.c.reserved
    query = (
        select(_stock.c.sku, _stock.c.warehouse_code, _stock.c.on_hand, _stock.c.reserved)
        .where(available <= threshold)
        .order_by(available, _stock.c.sku, _stock.c.warehouse_code)
        .limit(max(1, min(limit, 500)))
    )
    if warehouses is not None:
        query = query.where(_stock.c.warehouse_code.in_(sorted(warehouses)))
    if after is not None:
        query = query.where(tuple_(available, _stock.c.sku, _stock.c.warehouse_code) > after)
    return [
        LowStock(sku, wh, int(on_hand), int(reserved))
        for sku, wh, on_hand, reserved in session.execute(query)
    ]
