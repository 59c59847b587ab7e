"""Demo data: three warehouses, a small grocery catalog with stock, and one user per role."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from storekeeper.accounts import users as accounts_users
from storekeeper.accounts.domain import Role
from storekeeper.catalog import barcodes
from storekeeper.catalog import service as catalog_service
from storekeeper.db import Database
from storekeeper.inventory import ledger as inventory_ledger
from storekeeper.inventory import warehouses as inventory_warehouses

WAREHOUSES = [
    ("BER", "Berlin central", 52.52, 13.405),
    ("HAM", "Hamburg port", 53.551, 9.993),
    ("MUC", "Munich south", 48.137, 11.575),
]

DEMO_USERS = [
    ("admin@example.com", "ledger-keys-1984", Role.ADMIN),
    ("manager@example.com", "stockroom-lamp-42", Role.MANAGER),
    ("clerk@example.com", "counter-bell-77", Role.CLERK),
    ("customer@example.com", "shopping-basket-9", Role.CUSTOMER),
]

_GOODS = [
    # name, price in cents, min and max storage temperature (None: ambient)
    ("Whole milk 1l", 129, 2.0, 6.0),
    ("Greek yoghurt 500g", 249, 2.0, 6.0),
    ("Butter 250g", 239, 2.0, 8.0),
    ("Frozen peas 1kg", 349, -25.0, -18.0),
    ("Vanilla ice cream 1l", 499, -25.0, -18.0),
    ("Salmon fillet 300g", 799, 0.0, 4.0),
    ("Espresso beans 1kg", 1899, None, None),
    ("Olive oil 750ml", 999, None, None),
    ("Basmati rice 2kg", 549, None, None),
    ("Dark chocolate 100g", 229, 12.0, 20.0),
]


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What ``load`` created."""

    products: int
    warehouses: int
    users: int


def is_empty(db: Database) -> bool:
    """Whether the database has no users yet (a fresh install)."""
    with db.reading() as session:
        return accounts_users.count(session) == 0


def load(
    db: Database,
    *,
    products: int = 50,
    seed: int = 7,
    progress: Callable[[int], None] | None = None,
) -> DemoSummary:
    """Create the demo data in one transaction; ``progress`` is called once per product."""
    rng = random.Random(seed)
    with db.transaction() as session:
        for code, name, lat, lon in WAREHOUSES:
            inventory_warehouses.create_warehouse(session, code=code, name=name, lat=lat, lon=lon)
        for email, password, role in DEMO_USERS:
            # The demo clerk works in Berlin: clerks act only at their assigned warehouses.
            warehouses = ["BER"] if role is Role.CLERK else None
            accounts_users.create_user(
                session, email=email, password=password, role=role, warehouses=warehouses
            )
        for i in range(products):
            _product(session, rng, i)
            if progress:
                progress(1)
    return DemoSummary(products=products, warehouses=len(WAREHOUSES), users=len(DEMO_USERS))


def demo_barcode(i: int) -> str:
    """The EAN-13 of the ``i``-th demo product (0-based): prefix 200, which GS1 keeps for codes
    used inside one shop, so no real product has it. DEMO-0001 has 2000000000015."""
    body = f"200{i + 1:09d}"
    return body + barcodes.check_digit(body)


def _product(session: Session, rng: random.Random, i: int) -> None:
    name, price, low, high = _GOODS[i % len(_GOODS)]
    sku = f"DEMO-{i + 1:04d}"
    catalog_service.create(
        session,
        data={
            "sku": sku,
            "name": name if i < len(_GOODS) else f"{name} (batch {i // len(_GOODS) + 1})",
            "price_cents": price,
            "currency": "EUR",
            "attributes": {
                "category": "chilled"
                if low is not None and low >= 0
                else "frozen"
                if low is not None
                else "ambient"
            },
            "min_temp_c": low,
            "max_temp_c": high,
            "barcodes": [demo_barcode(i)],
        },
    )
    for code, *_ in WAREHOUSES:
        qty = rng.choice([0, 5, 20, 50, 120])
        if qty:
            inventory_ledger.record_movement(
                session, sku=sku, warehouse=code, delta=qty, reason="receipt", ref="demo"
            )
