"""Where the forecast reads daily demand from: the reporting context's read model
(``storekeeper.reporting.service.daily_demand``), or any callable of the same signature (tests
and the W10 benchmark pass synthetic series)."""

from __future__ import annotations

from datetime import date
from typing import Protocol

from sqlalchemy.orm import Session

from storekeeper.reporting import service as reporting_service

SeriesDemand = reporting_service.SeriesDemand
"""One series: SKU, warehouse, and per day from ``since`` units sold and on-hand at its end."""


class DemandSource(Protocol):
    """Daily demand of every series with movements, for every day from ``since`` to ``until``."""

    def __call__(self, session: Session, *, since: date, until: date) -> list[SeriesDemand]:
        """Series in any order, each with one value per day (UTC) in its arrays."""
        ...


DAILY_DEMAND: DemandSource = reporting_service.daily_demand
"""The source the forecast job uses."""
