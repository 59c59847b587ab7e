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


# The sync snapshot (``storekeeper.sync.snapshot``): three lines per stock row of the
# warehouse (sku, version, document; the keys in the order of a pull's stock ``data``), joined
# by the database into one string, with their count.
_SNAPSHOT_SECTION = {
    "sqlite": f"""
SELECT count(*), group_concat(entry, char(10)) FROM (
    SELECT sku || char(10) || version || char(10) || json_object(
        'sku', sku, 'warehouse', warehouse_code, 'on_hand', on_hand, 'reserved', reserved,
        'available', on_hand - reserved) AS entry
    FROM {_stock.name} WHERE warehouse_code = ? ORDER BY sku
)
""",  # noqa: S608 (the table name from the model; the warehouse is a parameter)
    "postgresql": f"""
SELECT count(*), string_agg(
    sku || E'\\n' || version || E'\\n' || json_build_object(
        'sku', sku, 'warehouse', warehouse_code, 'on_hand', on_hand, 'reserved', reserved,
        'available', on_hand - reserved)::text,
    E'\\n' ORDER BY sku)
FROM {_stock.name} WHERE warehouse_code = %s
""",  # noqa: S608
}


def snapshot_section(connection: Connection, *, warehouse: str) -> tuple[bytes, int]:
    """Every stock row of ``warehouse`` as a snapshot section (the last line without its
    newline) and how many rows; run inside the snapshot's one read transaction."""
    sql = _SNAPSHOT_SECTION[connection.dialect.name]
    count, text = connection.exec_driver_sql(sql, (warehouse,)).one()
    return (text.encode() if count else b""), int(count)
