"""What the telemetry context runs in the background: the retention and silence sweepers."""

from __future__ import annotations

import logging
from datetime import timedelta

from storekeeper.config import Settings
from storekeeper.db import Database, utcnow
from storekeeper.observability import metrics
from storekeeper.tasks.registry import Registry
from storekeeper.telemetry import service, silence
from storekeeper.telemetry.store import TelemetryStore

log = logging.getLogger(__name__)

SWEEP_EVERY_S = 600.0
"""Retention is counted in days; sweeping every ten minutes keeps each delete small. A shorter
``STOREKEEPER_PRUNE_EVERY_S`` (a soak keeping minutes) makes it sweep as often as the rest."""


SILENCE_EVERY_S = 60.0
"""Silence is counted in minutes (at least one): a minute's delay on top is within its error."""


def register(registry: Registry, *, settings: Settings) -> None:
    """Add the retention and silence sweepers to the leader's periodic work."""
    registry.every("telemetry.sweep_retention", min(SWEEP_EVERY_S, settings.prune_every_s), sweep)
    registry.every("telemetry.silent_sensors", SILENCE_EVERY_S, sweep_silent)


def sweep(*, db: Database, telemetry_store: TelemetryStore, settings: Settings) -> None:
    """Delete readings and aggregates past their retention."""
    raw, minutes = service.sweep_retention(db=db, store=telemetry_store, settings=settings)
    if raw or minutes:
        log.info("telemetry retention: %d raw readings, %d minute rows deleted", raw, minutes)


def sweep_silent(*, db: Database, settings: Settings) -> None:
    """Raise ``sensor.silent`` for monitored sensors quiet for ``STOREKEEPER_SENSOR_SILENT_S``."""
    with db.transaction() as session:
        raised = silence.raise_silent_alerts(
            session, now=utcnow(), silent_after=timedelta(seconds=settings.sensor_silent_s)
        )
    if raised:
        metrics.ALERTS.labels("raised").inc(raised)
        log.warning("%d sensor(s) went silent: sensor.silent alerts raised", raised)
