"""Helpers for the sync integration tests: a shop made through the services, and pulls."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from storekeeper.accounts.domain import Principal, Role
from storekeeper.catalog import service as catalog_service
from storekeeper.catalog.models import Product, ProductBarcode
from storekeeper.db import Database
from storekeeper.inventory import ledger as inventory_ledger
from storekeeper.inventory import levels as inventory_levels
from storekeeper.inventory import warehouses as inventory_warehouses
from storekeeper.inventory.models import Movement, StockLevel
from storekeeper.sync import feed
from storekeeper.sync.models import PushedMutation, SyncException

MANAGER = Principal(user_id=uuid.uuid4(), role=Role.MANAGER)


def make_shop(db: Database, warehouses: list[str], skus: list[str], stock: int = 0) -> None:
    """Warehouses and products, each product with ``stock`` units in every warehouse."""
    with db.transaction() as session:
        for code in warehouses:
            inventory_warehouses.create_warehouse(session, code=code, name=code, lat=50.0, lon=10.0)
        for sku in skus:
            catalog_service.create(
                session,
                data={"sku": sku, "name": f"Product {sku}", "price_cents": 100, "currency": "EUR"},
            )
            for code in warehouses:
                if stock:
                    inventory_ledger.record_movement(
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


def server_copy(db: Database, warehouse: str) -> dict[tuple[str, str], Any]:
    """What a replica of ``warehouse`` must hold once up to date, keyed like ``apply`` keys it."""
    with db.reading() as session:
        codes: dict[str, list[str]] = {}
        for barcode in session.scalars(select(ProductBarcode).order_by(ProductBarcode.code)):
            codes.setdefault(barcode.sku, []).append(barcode.code)
        copy: dict[tuple[str, str], Any] = {
            ("product", p.sku): {
                "sku": p.sku,
                "name": p.name,
                "price_cents": p.price_cents,
                "currency": p.currency,
                "attributes": p.attributes,
                "min_temp_c": p.min_temp_c,
                "max_temp_c": p.max_temp_c,
                "barcodes": codes.get(p.sku, []),
                "hlc": p.hlc,
            }
            for p in session.scalars(select(Product).where(Product.archived_at.is_(None)))
        }
        for level in session.scalars(
            select(StockLevel).where(StockLevel.warehouse_code == warehouse)
        ):
            copy[("stock", level.sku)] = {
                "sku": level.sku,
                "warehouse": warehouse,
                "on_hand": level.on_hand,
                "reserved": level.reserved,
                "available": level.on_hand - level.reserved,
            }
    return copy


def check_ledger(
    db: Database, mutations: Mapping[uuid.UUID, tuple[str, dict[str, Any]]], skus: list[str]
) -> dict[uuid.UUID, str]:
    """Assert the stock guarantees for ``mutations`` (id -> type, data); return stored verdicts.

    Every mutation has its one stored verdict (none is lost), none moved stock twice, on-hand
    equals the sum of the movements, and every offline sale was applied in full or its
    shortfall is listed as an exception.
    """
    ids = list(mutations)
    with db.reading() as session:
        verdicts: dict[uuid.UUID, str] = dict(
            session.execute(
                select(PushedMutation.id, PushedMutation.status).where(PushedMutation.id.in_(ids))
            ).all()
        )
        moves = session.execute(
            select(Movement.mutation_id, Movement.delta).where(Movement.mutation_id.in_(ids))
        ).all()
        exceptions = {
            e.mutation_id: e
            for e in session.scalars(
                select(SyncException).where(SyncException.mutation_id.in_(ids))
            )
        }
        totals = inventory_levels.ledger_totals(session, skus=skus)
        levels = {
            (s.sku, s.warehouse_code): s.on_hand
            for s in session.scalars(select(StockLevel).where(StockLevel.sku.in_(skus)))
        }
    assert set(verdicts) == set(ids), "a pushed mutation has no stored verdict"
    per_mutation = Counter(mutation_id for mutation_id, _ in moves)
    assert max(per_mutation.values(), default=0) <= 1, "a mutation moved stock twice"
    delta_of = dict(moves)
    assert levels == totals, "on-hand differs from the sum of the movements"
    for mutation_id, (kind, data) in mutations.items():
        status = verdicts[mutation_id]
        if not kind.startswith("stock."):
            continue
        if status == "rejected":
            assert mutation_id not in delta_of
            continue
        assert per_mutation[mutation_id] == 1
        if kind == "stock.sell":
            qty = data["qty"]
            if status == "applied":
                assert delta_of[mutation_id] == -qty and mutation_id not in exceptions
            else:
                exception = exceptions[mutation_id]
                assert exception.shortfall == qty + delta_of[mutation_id] > 0
                assert (exception.requested, exception.applied) == (qty, -delta_of[mutation_id])
    return verdicts
