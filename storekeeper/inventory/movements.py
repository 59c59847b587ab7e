"""Writing one ledger row and the ``stock.changed`` event that tells the other contexts of it.

Every ledger write (``ledger``, ``reservations``) goes through :func:`write`, so each event
carries the movement's id, delta, unit cost and time: what a reader of the ledger (the
``reporting`` context) needs without reading inventory's tables.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from storekeeper.db import utcnow
from storekeeper.inventory.events import StockChanged
from storekeeper.inventory.models import Movement
from storekeeper.observability import metrics
from storekeeper.observability.counting import count_on_commit

_movement = cast(Table, Movement.__table__)


def write(
    session: Session,
    *,
    sku: str,
    warehouse: str,
    delta: int,
    reason: str,
    ref: str | None,
    actor_id: str | None,
    replica_id: str | None = None,
    mutation_id: uuid.UUID | None = None,
    unit_cost_cents: int | None = None,
    at: datetime | None = None,
) -> tuple[int, datetime]:
    """Append one ledger row; returns its id and time (a Core INSERT … RETURNING: the event
    needs the id now, not at the unit of work's flush)."""
    moved_at = at or utcnow()
    movement_id = session.execute(
        insert(_movement)
        .values(
            sku=sku,
            warehouse_code=warehouse,
            delta=delta,
            reason=reason,
            ref=ref,
            actor_id=actor_id,
            replica_id=replica_id,
            mutation_id=mutation_id,
            unit_cost_cents=unit_cost_cents,
            created_at=moved_at,
        )
        .returning(_movement.c.id)
    ).scalar_one()
    count_on_commit(session, metrics.STOCK_MOVEMENTS.labels(reason))
    return int(movement_id), moved_at


def changed(
    *,
    sku: str,
    warehouse: str,
    on_hand: int,
    reserved: int,
    reason: str,
    ref: str | None,
    movement: tuple[int, datetime],
    delta: int,
    unit_cost_cents: int | None = None,
) -> StockChanged:
    """The event of a movement just written: the levels after it and the movement's facts."""
    movement_id, moved_at = movement
    return StockChanged(
        sku=sku,
        warehouse=warehouse,
        on_hand=on_hand,
        reserved=reserved,
        reason=reason,
        ref=ref,
        delta=delta,
        movement_id=movement_id,
        unit_cost_cents=unit_cost_cents,
        moved_at=moved_at.isoformat(),
    )
