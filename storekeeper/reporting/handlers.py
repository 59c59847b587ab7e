"""The reporting context's reactions: inventory's ``stock.changed`` events into its read models.

Exactly once per event: the relay's inbox records the event in the same transaction as the
rows written here, and the movement id keys the ledger copy besides (a rebuild running at the
same time copies a movement once too). Months are closed into snapshots by a periodic job.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from storekeeper.db import Database
from storekeeper.inventory.events import StockChanged
from storekeeper.reporting import balances, readmodel
from storekeeper.tasks.registry import Registry

CONSUMER = "reporting"
CLOSE_PERIODS_EVERY_S = 3600.0


def register(registry: Registry) -> None:
    """Subscribe to stock changes and close periods every hour."""
    registry.on(CONSUMER, StockChanged, record_stock_change)
    registry.every("reporting.close_periods", CLOSE_PERIODS_EVERY_S, close_periods)


def record_stock_change(session: Session, event: StockChanged) -> None:
    """Keep the series' levels and, for a ledger movement, copy it (priced, if a sale).

    Events stored before they carried the movement (no ``movement_id``) update the levels
    only: ``storekeeper reports rebuild`` copies those movements from the inventory service.
    """
    readmodel.set_level(
        session,
        sku=event.sku,
        warehouse=event.warehouse,
        on_hand=event.on_hand,
        reserved=event.reserved,
    )
    if event.movement_id is None or event.moved_at is None:
        return
    fact = readmodel.Fact(
        movement_id=event.movement_id,
        sku=event.sku,
        warehouse=event.warehouse,
        delta=event.delta,
        reason=event.reason,
        ref=event.ref,
        unit_cost_cents=event.unit_cost_cents,
        moved_at=datetime.fromisoformat(event.moved_at),
    )
    readmodel.record_facts(session, [fact])


def close_periods(*, db: Database) -> None:
    """Close the months that ended into snapshots."""
    with db.transaction() as session:
        balances.close_periods(session)
