"""The unit of work and the database plumbing, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text

from storekeeper.bootstrap import Container
from storekeeper.catalog import service as catalog_service
from storekeeper.catalog.models import Product
from storekeeper.events.models import OutboxEvent


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
