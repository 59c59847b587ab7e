"""Reading the stock ledger back: movements newest first, paged by id (for pages and exports)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from storekeeper.inventory.models import Movement

MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class MovementView:
    """One ledger row as a reader sees it."""

    id: int
    sku: str
    warehouse: str
    delta: int
    reason: str
    ref: str | None
    actor_id: str | None
    replica_id: str | None
    created_at: datetime
    unit_cost_cents: int | None = None


def _view(row: Movement) -> MovementView:
    return MovementView(
        id=row.id,
        sku=row.sku,
        warehouse=row.warehouse_code,
        delta=row.delta,
        reason=row.reason,
        ref=row.ref,
        actor_id=row.actor_id,
        replica_id=row.replica_id,
        created_at=row.created_at,
        unit_cost_cents=row.unit_cost_cents,
    )


def list_movements(
    session: Session,
    *,
    sku: str | None = None,
    warehouses: Collection[str] | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> tuple[list[MovementView], int | None]:
    """Movements newest first, optionally of one SKU and within ``warehouses``; and the id to
    pass as ``before_id`` for the next page (``None`` on the last page).

    Keyset paging on the primary key (never OFFSET), so page 1,000 costs what page 1 does;
    ``ix_inventory_movement_sku_wh`` serves the per-SKU history.
    """
    limit = max(1, min(limit, MAX_PAGE))
    query = select(Movement).order_by(Movement.id.desc()).limit(limit + 1)
    if sku is not None:
        query = query.where(Movement.sku == sku)
    if warehouses is not None:
        query = query.where(Movement.warehouse_code.in_(sorted(warehouses)))
    if before_id is not None:
        query = query.where(Movement.id < before_id)
    rows = session.scalars(query).all()
    views = [_view(row) for row in rows[:limit]]
    return views, (views[-1].id if len(rows) > limit else None)


def get_movement(session: Session, *, movement_id: int) -> MovementView | None:
    """One ledger row by id, or None."""
    row = session.get(Movement, movement_id)
    if row is None:
        return None
    return _view(row)


def list_movements_after(session: Session, *, after_id: int, limit: int) -> list[MovementView]:
    """Movements oldest first from the one after ``after_id``: the whole ledger, page by page,
    for a reader that rebuilds what it derives from it (``storekeeper reports rebuild``)."""
    query = select(Movement).where(Movement.id > after_id).order_by(Movement.id).limit(limit)
    return [_view(row) for row in session.scalars(query)]
