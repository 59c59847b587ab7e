"""What the telemetry context runs in the background: the retention sweeper."""

from __future__ import annotations

import logging

from storekeeper.config import Settings
from storekeeper.db import Database
from storekeeper.tasks.registry import Registry
from storekeeper.telemetry import service
from storekeeper.telemetry.store import TelemetryStore

log = logging.getLogger(__name__)

SWEEP_EVERY_S = 600.0
"""Retention is counted in days; sweeping every ten minutes keeps each delete small."""


def register(registry: Registry) -> None:
    """Add the retention sweeper to the leader's periodic work."""
    registry.every("telemetry.sweep_retention", SWEEP_EVERY_S, sweep)


def sweep(*, db: Database, telemetry_store: TelemetryStore, settings: Settings) -> None:
    """Delete readings and aggregates past their retention."""
    raw, minutes = service.sweep_retention(db=db, store=telemetry_store, settings=settings)
    if raw or minutes:
        log.info("telemetry retention: %d raw readings, %d minute rows deleted", raw, minutes)
