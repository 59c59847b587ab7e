"""Helpers for the sync integration tests: a shop made through the services, and pulls."""

from __future__ import annotations

import json
import uuid
from typing import Any

from storekeeper.accounts.domain import Principal, Role
from storekeeper.catalog import service as catalog_service
from storekeeper.db import Database
from storekeeper.inventory import service as inventory_service
from storekeeper.sync import feed

MANAGER = Principal(user_id=uuid.uuid4(), role=Role.MANAGER)


def make_shop(db: Database, warehouses: list[str], skus: list[str], stock: int = 0) -> None:
    """Warehouses and products, each product with ``stock`` units in every warehouse."""
    with db.transaction() as session:
        for code in warehouses:
            inventory_service.create_warehouse(session, code=code, name=code, lat=50.0, lon=10.0)
        for sku in skus:
            catalog_service.create(
                session,
                data={"sku": sku, "name": f"Product {sku}", "price_cents": 100, "currency": "EUR"},
            )
            for code in warehouses:
                if stock:
                    inventory_service.record_movement(
                        session, sku=sku, warehouse=code, delta=stock, reason="receipt"
                    )


def pull_all(
    db: Database,
    scope: str,
    since: str | None = None,
    *,
    principal: Principal = MANAGER,
    limit: int = 500,
) -> tuple[list[dict[str, Any]], str]:
    """Every change of ``scope`` after ``since`` until the server has no more ready."""
    changes: list[dict[str, Any]] = []
    while True:
        page = json.loads(feed.pull(db, principal=principal, scope=scope, since=since, limit=limit))
        changes.extend(page["changes"])
        since = page["cursor"]
        if not page["has_more"]:
            return changes, since


def apply(copy: dict[tuple[str, str], Any], changes: list[dict[str, Any]]) -> None:
    """Apply pulled changes to a replica's copy of the server, as the client library does."""
    for change in changes:
        key = (change["entity"], change["key"])
        if change["op"] == "delete":
            copy.pop(key, None)
        else:
            copy[key] = change["data"]
