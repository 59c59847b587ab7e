"""What the telemetry context runs in the background: the retention sweeper."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from storekeeper.tasks.background import Periodic
from storekeeper.telemetry import service

if TYPE_CHECKING:
    from storekeeper.bootstrap import Container

log = logging.getLogger(__name__)

SWEEP_EVERY_S = 600.0
"""Retention is counted in days; sweeping every ten minutes keeps each delete small."""


def register(container: Container) -> None:
    """Add the retention sweeper to the leader's periodic work."""
    container.periodic.append(Periodic("telemetry.sweep_retention", SWEEP_EVERY_S, sweep))


def sweep(container: Container) -> None:
    """Delete readings and aggregates past their retention."""
    raw, minutes = service.sweep_retention(container)
    if raw or minutes:
        log.info("telemetry retention: %d raw readings, %d minute rows deleted", raw, minutes)
