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


# The sync snapshot (``storekeeper.sync.snapshot``): "sku TAB version TAB document" per stock
# row of the warehouse, built by the database (keys in the order of a pull's stock ``data``).
_SNAPSHOT = {
    "sqlite": f"""
SELECT sku || char(9) || version || char(9) || json_object(
    'sku', sku, 'warehouse', warehouse_code, 'on_hand', on_hand, 'reserved', reserved,
    'available', on_hand - reserved)
FROM {_stock.name} WHERE warehouse_code = ? ORDER BY sku
""",  # noqa: S608 (the table name from the model; the warehouse is a parameter)
    "postgresql": f"""
SELECT sku || E'\\t' || version || E'\\t' || json_build_object(
    'sku', sku, 'warehouse', warehouse_code, 'on_hand', on_hand, 'reserved', reserved,
    'available', on_hand - reserved)::text
FROM {_stock.name} WHERE warehouse_code = %s ORDER BY sku
""",  # noqa: S608
}


def snapshot_lines(connection: Connection, *, warehouse: str) -> tuple[bytes, int]:
    """Every stock row of ``warehouse`` as snapshot lines (each ending in a newline), and how
    many; run inside the snapshot's one read transaction."""
    # The driver's cursor, not a SQLAlchemy result: a warehouse's whole stock, one string a row.
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(_SNAPSHOT[connection.dialect.name], (warehouse,))
        lines = [row[0] for row in cursor.fetchall()]
    finally:
        cursor.close()
    return (("\n".join(lines) + "\n").encode() if lines else b""), len(lines)
