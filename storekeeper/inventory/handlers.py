"""What the inventory context runs in the background: the reservation expiry sweeper."""

from __future__ import annotations

import logging

from storekeeper.db import Database, utcnow
from storekeeper.inventory import reservations
from storekeeper.tasks.registry import Registry

log = logging.getLogger(__name__)

EXPIRY_EVERY_S = 10.0
"""Time-to-live is given in whole seconds; a reservation outlives it by at most this much."""


def register(registry: Registry) -> None:
    """Add the expiry sweeper to the leader's periodic work."""
    registry.every("inventory.release_expired_reservations", EXPIRY_EVERY_S, release_expired)


def release_expired(*, db: Database) -> None:
    """Release reservations whose time-to-live ran out (a client that reserved and vanished)."""
    with db.transaction() as session:
        released = reservations.release_expired(session, now=utcnow())
    if released:
        log.info("released %d expired reservation(s): %s", len(released), ", ".join(released))
