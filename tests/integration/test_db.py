"""The unit of work and the database plumbing, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import cast

import pytest
from sqlalchemy import Table, func, select, text

from storekeeper.bootstrap import Container
from storekeeper.catalog import service as catalog_service
from storekeeper.catalog.models import Product
from storekeeper.db import insert_many
from storekeeper.events.models import OutboxEvent
from storekeeper.events.outbox import event_ids


def _product(sku: str) -> dict[str, object]:
    return {"sku": sku, "name": sku, "price_cents": 100, "currency": "EUR"}


def test_unit_of_work_commits_state_and_outbox_together(container: Container) -> None:
    with container.db.transaction() as session:
        catalog_service.create(session, data=_product("A1"))

    with container.db.reading() as session:
        assert session.get(Product, "A1") is not None
        events = session.scalars(select(OutboxEvent.type)).all()
    assert events == ["product.changed"]


def test_unit_of_work_rolls_back_everything_on_error(container: Container) -> None:
    with pytest.raises(RuntimeError), container.db.transaction() as session:
        catalog_service.create(session, data=_product("B1"))
        raise RuntimeError("boom")

    with container.db.reading() as session:
        assert session.get(Product, "B1") is None
        assert session.scalar(select(func.count()).select_from(OutboxEvent)) == 0


def test_datetimes_come_back_aware_in_utc(container: Container) -> None:
    with container.db.transaction() as session:
        product = catalog_service.create(session, data=_product("C1"))
        product.archived_at = datetime(2026, 1, 2, 5, 0, tzinfo=timezone(timedelta(hours=2)))

    with container.db.reading() as session:
        stored = session.get(Product, "C1")
        assert stored is not None
        assert stored.archived_at == datetime(2026, 1, 2, 3, 0, tzinfo=UTC)
        assert stored.archived_at.tzinfo is not None


def test_naive_datetimes_are_refused(container: Container) -> None:
    with pytest.raises(Exception, match="naive"), container.db.transaction() as session:
        product = catalog_service.create(session, data=_product("D1"))
        product.archived_at = datetime(2026, 1, 2)
        session.flush()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_runs_in_wal_mode(container: Container, backend: str) -> None:
    with container.db.reading() as session:
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1


@pytest.mark.parametrize("rows", [3, 40])  # a plain INSERT on PostgreSQL, then arrays
def test_insert_many_stores_rows_as_the_orm_reads_them(container: Container, rows: int) -> None:
    now = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    products = [
        {
            "sku": f"IM-{n:03d}",
            "name": f"Item {n}",
            "price_cents": 100 + n,
            "currency": "EUR",
            "attributes": {"n": n, "tags": ["a", "b"]} if n % 2 else {},
            "min_temp_c": 2.5 if n % 3 == 0 else None,
            "max_temp_c": None,
            "created_at": now,
            "updated_at": now + timedelta(seconds=n),
            "field_hlcs": {},
        }
        for n in range(rows)
    ]
    table = cast(Table, Product.__table__)
    with container.db.transaction() as session:
        insert_many(session.connection(), table, products)
        # The same keys again are skipped, not refused; a new one goes in.
        again = [{**products[0], "name": "changed"}, {**products[0], "sku": "IM-NEW"}]
        insert_many(session.connection(), table, again, ignore_conflicts=True)

    with container.db.reading() as session:
        stored = {p.sku: p for p in session.scalars(select(Product))}
    assert len(stored) == rows + 1
    for n, row in enumerate(products):
        product = stored[f"IM-{n:03d}"]
        assert (product.name, product.price_cents, product.attributes) == (
            row["name"],
            row["price_cents"],
            row["attributes"],
        )
        assert (product.min_temp_c, product.max_temp_c) == (row["min_temp_c"], None)
        assert product.updated_at == now + timedelta(seconds=n)
        assert product.version == 1  # the column's default, left out of the rows
        assert product.archived_at is None


def test_outbox_event_ids_are_unique_and_in_time_order() -> None:
    first, second = event_ids(1000), event_ids(1000)
    assert len(set(first + second)) == 2000
    assert all(e.version == 7 for e in first)
    assert max(first).int >> 80 <= min(second).int >> 80  # the millisecond comes first
