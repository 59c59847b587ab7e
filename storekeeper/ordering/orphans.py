"""Orphaned reservations: stock a remote inventory holds for an order that never committed.

With ``serve --only`` an order reserves over HTTP while its own transaction is open; a process
killed between the two leaves the reservation behind. Ordering owns the answer to "is there such
an order?", so its sweeper asks inventory for old ``order:<id>`` references and releases those
with no order.
"""

from __future__ import annotations

import logging
import uuid

from storekeeper.config import Settings
from storekeeper.db import Database
from storekeeper.observability import metrics
from storekeeper.ordering import service
from storekeeper.ordering.stock import InventoryPort

log = logging.getLogger(__name__)


def sweep_orphan_reservations(
    *, db: Database, inventory: InventoryPort, settings: Settings
) -> None:
    """Release remote reservations whose order never committed (its process died in between).

    Only references older than ``STOREKEEPER_RESERVATION_GRACE_S`` are looked at — far longer
    than an order's own transaction — so an order still being placed is never touched.
    """
    refs = inventory.stale_refs(older_than_s=settings.reservation_grace_s)
    by_order = {ref: order_id for ref in refs if (order_id := _order_id(ref)) is not None}
    with db.reading() as session:
        known = service.existing_ids(session, order_ids=list(by_order.values()))
    orphans = [ref for ref, order_id in by_order.items() if order_id not in known]
    for ref in orphans:
        inventory.release_now(ref)
        log.warning("released %s: its order never committed", ref)
    if orphans:
        metrics.ORPHAN_RESERVATIONS.inc(len(orphans))


def _order_id(ref: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(ref.removeprefix("order:"))
    except ValueError:
        return None
