"""Stock rows of a warehouse as the sync feed of offline replicas reads them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, select
from sqlalchemy.engine import Connection

from storekeeper.inventory.models import StockLevel

_stock = cast(Table, StockLevel.__table__)

# Core rows: the initial pull of a replica reads a warehouse's whole stock.
_SYNC_COLUMNS = (_stock.c.sku, _stock.c.on_hand, _stock.c.reserved, _stock.c.version)
_SYNC_PAGE = (
    select(*_SYNC_COLUMNS)
    .where(_stock.c.warehouse_code == bindparam("warehouse"), _stock.c.sku > bindparam("after"))
    .order_by(_stock.c.sku)
    .limit(bindparam("limit"))
)
_SYNC_BY_SKU = select(*_SYNC_COLUMNS).where(
    _stock.c.warehouse_code == bindparam("warehouse"),
    _stock.c.sku.in_(bindparam("skus", expanding=True)),
)


def sync_page(
    connection: Connection, *, warehouse: str, after: str, limit: int
) -> Sequence[Row[*tuple[Any, ...]]]:
    """Stock rows of ``warehouse`` with a SKU after ``after``, in SKU order."""
    params = {"warehouse": warehouse, "after": after, "limit": limit}
    return connection.execute(_SYNC_PAGE, params).all()


def sync_rows(
    connection: Connection, *, warehouse: str, skus: Iterable[str]
) -> dict[str, Row[*tuple[Any, ...]]]:
    """The stock rows of ``warehouse`` for the given SKUs that exist."""
    rows = connection.execute(_SYNC_BY_SKU, {"warehouse": warehouse, "skus": sorted(set(skus))})
    return {row.sku: row for row in rows}
