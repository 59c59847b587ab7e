"""A small tea shop for the clerk-app and conformance tests: products, a warehouse, its stock."""

from __future__ import annotations

from storekeeper.bootstrap import Container
from storekeeper.catalog import service as catalog
from storekeeper.inventory import ledger, levels, warehouses


def tea_shop(container: Container, stock: dict[str, int], *, hamburg: int | None = None) -> None:
    """Berlin (BER) with ``stock`` units of each SKU; with ``hamburg``, also Hamburg (HAM)
    holding that many units of each SKU (0: the warehouse only)."""
    with container.db.transaction() as session:
        warehouses.create_warehouse(session, code="BER", name="Berlin", lat=52.52, lon=13.405)
        if hamburg is not None:
            warehouses.create_warehouse(session, code="HAM", name="Hamburg", lat=53.551, lon=9.993)
        for sku, units in stock.items():
            catalog.create(
                session,
                data={"sku": sku, "name": f"Tea {sku}", "price_cents": 450, "currency": "EUR"},
            )
            ledger.record_movement(session, sku=sku, warehouse="BER", delta=units, reason="receipt")
            if hamburg:
                ledger.record_movement(
                    session, sku=sku, warehouse="HAM", delta=hamburg, reason="receipt"
                )


def on_hand(container: Container, sku: str) -> int:
    """The server's on-hand of ``sku`` in BER."""
    with container.db.reading() as session:
        return levels.stock_totals(session, sku=sku, warehouse="BER").on_hand


def ledger_sum(container: Container, sku: str) -> int:
    """The sum of ``sku``'s movements in BER (equals on-hand when nothing was lost)."""
    with container.db.reading() as session:
        return levels.ledger_totals(session, skus=[sku])[(sku, "BER")]
