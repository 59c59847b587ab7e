"""Request and response bodies of the telemetry API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from storekeeper.inventory.schemas import WarehouseCode
from storekeeper.telemetry.domain import MAX_TEMP_C, MIN_TEMP_C

SensorId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$")]
RangeEnd = Annotated[float, Field(ge=MIN_TEMP_C, le=MAX_TEMP_C, allow_inf_nan=False)]
MAX_BATCH = 1000
"""Readings in one ``POST /telemetry``; a bigger batch is refused as a whole (422)."""


class SensorCreate(BaseModel):
    """A new sensor in a room of a warehouse, with the room's allowed temperature range."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: SensorId
    warehouse: WarehouseCode
    room: str = Field(min_length=1, max_length=64)
    min_temp_c: RangeEnd | None = None
    max_temp_c: RangeEnd | None = None

    @model_validator(mode="after")
    def _ordered(self) -> SensorCreate:
        if (
            self.min_temp_c is not None
            and self.max_temp_c is not None
            and self.min_temp_c > self.max_temp_c
        ):
            raise ValueError("min_temp_c must not be above max_temp_c")
        return self


class SensorRead(BaseModel):
    """A sensor, its effective range (room and stored products) and its reading outcomes."""

    id: str
    warehouse: str
    room: str
    min_temp_c: float | None
    max_temp_c: float | None
    effective_min_temp_c: float | None
    effective_max_temp_c: float | None
    open_alert_id: int | None
    counts: dict[str, int] = Field(
        description="Readings so far by outcome: stored, duplicate, or the rejection reason."
    )
    created_at: datetime


class ReadingBody(BaseModel):
    """One reading; plausibility is judged per reading, not by the body's schema."""

    # strict: JSON types as the schema says (no `false` for 0.0); a timestamp still comes as text.
    model_config = ConfigDict(extra="forbid", strict=True)

    sensor: str = Field(min_length=1, max_length=64)
    ts: datetime = Field(strict=False, description="When it was measured, with a UTC offset.")
    temp_c: float
    humidity: float | None = None

    @field_validator("ts", mode="before")
    @classmethod
    def _text_only(cls, value: object) -> object:
        # Lax parsing would read a number as seconds since the epoch; the schema says text.
        if not isinstance(value, str):
            raise ValueError("ts must be an ISO 8601 date-time string")
        return value


class TelemetryBatch(BaseModel):
    """A batch of readings from a device or a manager."""

    model_config = ConfigDict(extra="forbid", strict=True)

    readings: list[ReadingBody] = Field(max_length=MAX_BATCH)


class VerdictRead(BaseModel):
    """What became of one reading: stored (``reason`` ``duplicate`` if it was already) or not."""

    stored: bool
    reason: str | None


class IngestResult(BaseModel):
    """One verdict per reading, in the order sent, and the totals."""

    results: list[VerdictRead]
    stored: int
    rejected: int


class BucketRead(BaseModel):
    """Temperature statistics of the readings in one bucket starting at ``start``."""

    start: datetime
    min: float
    max: float
    avg: float
    count: int


AlertStatus = Literal["open", "acknowledged", "cleared"]


class AlertRead(BaseModel):
    """An alert as the API shows it."""

    id: int
    sensor: str
    warehouse: str
    room: str
    status: AlertStatus
    kind: Literal["temperature", "sensor.silent"] = Field(
        description="temperature: out of range past the grace period; sensor.silent: a "
        "monitored sensor sent nothing for STOREKEEPER_SENSOR_SILENT_S"
    )
    min_temp_c: float | None
    max_temp_c: float | None
    temp_c: float | None = Field(description="the reading that raised it; null when silent")
    started_at: datetime
    raised_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    cleared_at: datetime | None
