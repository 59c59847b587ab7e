"""What every transport (HTTP, MQTT, TCP) hands to the telemetry service, and what it gets back.

The transports only parse their wire format into :class:`ReadingIn`; validation (known sensor,
the caller's scope, physical range, timestamps) and storage happen once, in
``storekeeper.telemetry.service.ingest``, so the three transports accept and reject alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Transport = Literal["http", "mqtt", "tcp"]


@dataclass(frozen=True, slots=True)
class ReadingIn:
    """One reading as a sensor sent it, parsed but not yet validated."""

    sensor: str
    ts: datetime  # timezone-aware
    temp_c: float
    humidity: float | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The fate of one reading: stored, or rejected with a short machine-readable reason."""

    stored: bool
    reason: str | None = None  # e.g. "unknown_sensor", "out_of_range", "future_timestamp"
