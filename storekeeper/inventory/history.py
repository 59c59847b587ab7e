"""Reading the stock ledger back: movements newest first, paged by id (for pages and exports)."""

from __future__ import annotations

from collections.abc import Collection, Iterator
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
    views = [
        MovementView(
            id=row.id,
            sku=row.sku,
            warehouse=row.warehouse_code,
            delta=row.delta,
            reason=row.reason,
            ref=row.ref,
            actor_id=row.actor_id,
            replica_id=row.replica_id,
            created_at=row.created_at,
        )
        for row in rows[:limit]
    ]
    return views, (views[-1].id if len(rows) > limit else None)


def get_movement(session: Session, *, movement_id: int) -> MovementView | None:
    """One ledger row by id, or None."""
    row = session.get(Movement, movement_id)
    if row is None:
        return None
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
    )


def movements_since(
    session: Session, *, since: datetime, batch: int = 5000
) -> Iterator[tuple[str, str, int, str, datetime]]:
    """(SKU, warehouse, delta, reason, created_at) of every movement at or after ``since``, in
    ledger order: what a reader rebuilds daily figures from (the demand forecast's extract).

    Plain Core tuples read in keyset batches by id (a year of a chain's ledger is millions of
    rows; a server-side cursor would need a transaction, and ``reading`` may have none).
    """
    after = 0
    while True:
        rows = session.execute(
            select(
                Movement.id,
                Movement.sku,
                Movement.warehouse_code,
                Movement.delta,
                Movement.reason,
                Movement.created_at,
            )
            .where(Movement.created_at >= since, Movement.id > after)
            .order_by(Movement.id)
            .limit(batch)
        ).all()
        for _, sku, warehouse, delta, reason, created_at in rows:
            yield sku, warehouse, int(delta), reason, created_at
        if len(rows) < batch:
            return
        after = rows[-1][0]
