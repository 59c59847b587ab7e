"""Benchmark data, loaded fast: bulk INSERTs for the volume, service functions for the rest.

Bulk rows keep the invariants the services keep: every stock row has the receipt movement that
explains its on-hand, so the ledger checks after a run start from a consistent state.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, insert, select

from storekeeper import demo
from storekeeper.accounts import security
from storekeeper.accounts.domain import Role
from storekeeper.accounts.keys import Keyring
from storekeeper.accounts.models import AuthSession, User
from storekeeper.catalog import service as catalog_service
from storekeeper.catalog.models import Product
from storekeeper.catalog.schemas import ProductRead
from storekeeper.db import Database, utcnow
from storekeeper.inventory import ledger as inventory_ledger
from storekeeper.inventory import warehouses as inventory_warehouses
from storekeeper.inventory.models import Movement, StockLevel

SKU_FORMAT = "SKU-%05d"
HOT_SKU_FORMAT = "HOT-%05d"
WAREHOUSES = tuple((code, lat, lon) for code, _name, lat, lon in demo.WAREHOUSES)
"""BER, HAM and MUC with their real coordinates."""

SHIP_TO_AREA = {"lat_min": 47.3, "lat_max": 55.0, "lon_min": 5.9, "lon_max": 15.0}
"""Orders ship to random places in Germany, so every warehouse is somebody's nearest."""

_CATEGORIES = ("chilled", "frozen", "ambient", "fresh", "household")
_BRANDS = ("Nordhof", "Alpenmilch", "Kraftkorn", "Seewind", "Sonnental", "Hausmarke")
_BATCH = 2000


@dataclass(frozen=True, slots=True)
class Customer:
    """A customer account and a bearer token for it."""

    id: uuid.UUID
    token: str
    session_id: uuid.UUID


def sku(index: int) -> str:
    """The SKU of the ``index``-th bench product."""
    return SKU_FORMAT % index


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


def _product_row(index: int, rng: random.Random) -> dict[str, Any]:
    now = utcnow()
    category = rng.choice(_CATEGORIES)
    chilled = category in ("chilled", "fresh")
    return {
        "sku": sku(index),
        "name": f"{rng.choice(_BRANDS)} {category} item {index}",
        "price_cents": rng.randint(49, 9999),
        "currency": "EUR",
        "attributes": {
            "category": category,
            "brand": rng.choice(_BRANDS),
            "weight_g": rng.choice((100, 250, 500, 1000)),
            "organic": rng.random() < 0.3,
            "tags": rng.sample(("vegan", "local", "bulk", "new", "sale"), 2),
        },
        "min_temp_c": 2.0 if chilled else None,
        "max_temp_c": 7.0 if chilled else None,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


def seed_products(db: Database, *, count: int, seed: int = 7) -> list[str]:
    """Insert ``count`` products in one transaction; returns their SKUs."""
    rng = random.Random(seed)
    rows = [_product_row(i, rng) for i in range(count)]
    with db.transaction() as session:
        for start in range(0, len(rows), _BATCH):
            session.execute(insert(_table(Product)), rows[start : start + _BATCH])
    return [row["sku"] for row in rows]


def seed_warehouses(db: Database) -> None:
    """Create BER, HAM and MUC through the inventory service."""
    with db.transaction() as session:
        for code, lat, lon in WAREHOUSES:
            inventory_warehouses.create_warehouse(session, code=code, name=code, lat=lat, lon=lon)


def seed_stock(
    db: Database, *, skus: list[str], units: int, codes: list[str] | None = None
) -> None:
    """Receive ``units`` of every SKU into every warehouse (or only ``codes``): stock rows plus
    the receipt movements explaining their on-hand."""
    now = utcnow()
    codes = codes if codes is not None else [code for code, _lat, _lon in WAREHOUSES]
    stock = [
        {"sku": s, "warehouse_code": code, "on_hand": units, "reserved": 0, "updated_at": now}
        for s in skus
        for code in codes
    ]
    movements = [
        {
            "sku": row["sku"],
            "warehouse_code": row["warehouse_code"],
            "delta": units,
            "reason": "receipt",
            "ref": "bench",
            "created_at": now,
        }
        for row in stock
    ]
    with db.transaction() as session:
        for start in range(0, len(stock), _BATCH):
            session.execute(insert(_table(StockLevel)), stock[start : start + _BATCH])
            session.execute(insert(_table(Movement)), movements[start : start + _BATCH])


def seed_customers(db: Database, *, count: int, signing_key: Keyring) -> list[Customer]:
    """``count`` customer accounts (sharing one password hash: hashing is slow on purpose)."""
    password_hash = security.hash_password("bench-customer-password")
    ids = [uuid.uuid4() for _ in range(count)]
    rows = [
        {
            "id": user_id,
            "email": f"bench-customer-{i}@example.com",
            "password_hash": password_hash,
            "role": Role.CUSTOMER.value,
            "is_active": True,
            "created_at": utcnow(),
        }
        for i, user_id in enumerate(ids)
    ]
    # One sign-in session per customer, as a real sign-in would open: every request checks it.
    expires = utcnow() + timedelta(hours=6)
    sessions = [
        {
            "id": uuid.uuid4(),
            "user_id": user_id,
            "kind": "login",
            "created_at": utcnow(),
            "expires_at": expires,
        }
        for user_id in ids
    ]
    with db.transaction() as session:
        session.execute(insert(_table(User)), rows)
        session.execute(insert(_table(AuthSession)), sessions)
    return [
        Customer(
            row["user_id"],
            security.issue_token(
                key=signing_key,
                user_id=row["user_id"],
                session_id=row["id"],
                token_type="access",
                ttl=timedelta(hours=6),
            ),
            row["id"],
        )
        for row in sessions
    ]


def seed_hot_sku(db: Database, *, index: int, units_per_warehouse: int) -> str:
    """A product with little stock in each warehouse, made through the catalog and inventory."""
    hot = HOT_SKU_FORMAT % index
    with db.transaction() as session:
        catalog_service.create(
            session,
            data={
                "sku": hot,
                "name": "The one everybody wants",
                "price_cents": 1999,
                "currency": "EUR",
            },
        )
        for code, _lat, _lon in WAREHOUSES:
            inventory_ledger.record_movement(
                session,
                sku=hot,
                warehouse=code,
                delta=units_per_warehouse,
                reason="receipt",
                ref="bench-hot",
            )
    return hot


def write_product_documents(db: Database, path: Path) -> int:
    """Write every product as the API shows it (``ProductRead``) to a JSON file keyed by SKU."""
    with db.reading() as session:
        documents = {
            product.sku: ProductRead.model_validate(product).model_dump(mode="json")
            for product in session.scalars(select(Product))
        }
    path.write_text(json.dumps(documents))
    return len(documents)
