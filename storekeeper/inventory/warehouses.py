"""Warehouses of the inventory context: add, list, and check that one exists."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storekeeper.errors import Conflict, NotFound
from storekeeper.inventory.models import Warehouse


class UnknownWarehouse(NotFound):
    """No warehouse has that code."""

    code = "unknown_warehouse"


class DuplicateWarehouse(Conflict):
    """A warehouse with that code exists already."""

    code = "duplicate_warehouse"


def create_warehouse(
    session: Session, *, code: str, name: str, lat: float, lon: float
) -> Warehouse:
    """Add a warehouse."""
    if session.get(Warehouse, code) is not None:
        raise DuplicateWarehouse(f"warehouse {code} exists already")
    warehouse = Warehouse(code=code, name=name, lat=lat, lon=lon)
    session.add(warehouse)
    session.flush()
    return warehouse


def list_warehouses(session: Session) -> list[Warehouse]:
    """Every warehouse in code order."""
    return list(session.scalars(select(Warehouse).order_by(Warehouse.code)))


def has_warehouse(session: Session, *, code: str) -> bool:
    """Whether a warehouse has this code."""
    return session.scalar(select(Warehouse.code).where(Warehouse.code == code)) is not None


def require_warehouse(session: Session, *, code: str) -> None:
    """Raise ``UnknownWarehouse`` unless a warehouse has this code."""
    if not has_warehouse(session, code=code):
        raise UnknownWarehouse(f"no warehouse with code {code}")
