"""Events the telemetry context publishes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class AlertRaised:
    """A sensor stayed outside its effective range longer than the grace period
    (``kind`` ``temperature``), or a monitored sensor went silent (``sensor.silent``:
    no ``temp_c``, ``started_at`` is its last reading)."""

    type: ClassVar[str] = "alert.raised"
    aggregate_type: ClassVar[str] = "alert"

    alert_id: int
    sensor: str
    warehouse: str
    room: str
    min_temp_c: float | None
    max_temp_c: float | None
    temp_c: float | None
    started_at: str  # ISO 8601, UTC
    kind: str = "temperature"  # a default: events stored before kinds existed decode

    @property
    def aggregate_id(self) -> str:
        """Alert id and warehouse: a feed reader can pick a warehouse's alerts by suffix."""
        return f"{self.alert_id}@{self.warehouse}"


@dataclass(frozen=True, slots=True)
class AlertCleared:
    """The sensor of an alert reported a reading back inside its range (or, for a
    ``sensor.silent`` alert, reported again at all)."""

    type: ClassVar[str] = "alert.cleared"
    aggregate_type: ClassVar[str] = "alert"

    alert_id: int
    sensor: str
    warehouse: str
    room: str
    temp_c: float
    cleared_at: str  # ISO 8601, UTC: the timestamp of the reading back in range
    kind: str = "temperature"

    @property
    def aggregate_id(self) -> str:
        """Same key as the alert's ``alert.raised``: both stay in order."""
        return f"{self.alert_id}@{self.warehouse}"
