"""Tables of the telemetry context: sensors, their counters and alert state, readings, alerts.

Raw readings are documents (JSON on SQLite, JSONB on PostgreSQL) keyed by sensor and timestamp,
so a reading sent twice is stored once. ``telemetry_minute`` keeps one row of min/max/sum/count
per sensor and minute, maintained at ingest: series over months read these, never the raw rows.
Minutes are integer epoch minutes, which makes bucketing plain integer arithmetic on both
databases.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Float, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from storekeeper.db import AutoIncrementId, Base, utcnow


class Sensor(Base):
    """A sensor in a warehouse room, with the room's temperature range and its excursion state."""

    __tablename__ = "telemetry_sensor"
    __table_args__ = (
        CheckConstraint(
            "min_temp_c IS NULL OR max_temp_c IS NULL OR min_temp_c <= max_temp_c",
            name="temp_range_ordered",
        ),
        Index("ix_telemetry_sensor_warehouse", "warehouse_code", "id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # A plain code, no foreign key: inventory owns warehouses (checked through its service).
    warehouse_code: Mapped[str] = mapped_column(String(32))
    room: Mapped[str] = mapped_column(String(64))
    min_temp_c: Mapped[float | None] = mapped_column(Float, default=None)
    max_temp_c: Mapped[float | None] = mapped_column(Float, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Alert state, updated at ingest: the newest reading evaluated, when the current excursion
    # began (None while in range), and the alert it raised, if any.
    last_ts: Mapped[datetime | None] = mapped_column(default=None)
    excursion_started_at: Mapped[datetime | None] = mapped_column(default=None)
    open_alert_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # The open ``sensor.silent`` alert (no reading for STOREKEEPER_SENSOR_SILENT_S), if any:
    # raised by the silence sweeper, cleared by the next reading.
    silent_alert_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # Readings stored so far. Kept here, not in telemetry_sensor_stat: the row is updated with
    # every batch anyway (its alert state), so the common outcome costs no extra write.
    stored_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class SensorStat(Base):
    """How many readings of a sensor ended otherwise than stored: ``duplicate`` or a rejection
    reason (stored ones are counted on the sensor row)."""

    __tablename__ = "telemetry_sensor_stat"

    sensor_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Reading(Base):
    """One raw reading as a document (``{"temp_c", "humidity", "via"}``); kept for the retention."""

    __tablename__ = "telemetry_reading"
    # The retention sweeper deletes by time across sensors.
    __table_args__ = (Index("ix_telemetry_reading_ts", "ts"),)

    sensor_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ts: Mapped[datetime] = mapped_column(primary_key=True)
    doc: Mapped[dict[str, Any]]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class MinuteAggregate(Base):
    """Temperature min, max, sum and count of one sensor in one minute (epoch minutes)."""

    __tablename__ = "telemetry_minute"
    __table_args__ = (Index("ix_telemetry_minute_minute", "minute"),)

    sensor_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
    temp_sum: Mapped[float] = mapped_column(Float)
    temp_min: Mapped[float] = mapped_column(Float)
    temp_max: Mapped[float] = mapped_column(Float)


class Alert(Base):
    """A breach of a sensor's effective range that lasted longer than the grace period
    (``temperature``), or a monitored sensor that stopped reporting (``sensor.silent``)."""

    __tablename__ = "telemetry_alert"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'acknowledged', 'cleared')", name="status_known"),
        CheckConstraint("kind IN ('temperature', 'sensor.silent')", name="kind_known"),
        Index("ix_telemetry_alert_status", "status", "id"),
        Index("ix_telemetry_alert_warehouse", "warehouse_code", "status", "id"),
    )

    id: Mapped[int] = mapped_column(AutoIncrementId, primary_key=True, autoincrement=True)
    sensor_id: Mapped[str] = mapped_column(String(64))
    warehouse_code: Mapped[str] = mapped_column(String(32))
    room: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="open", server_default="open")
    kind: Mapped[str] = mapped_column(
        String(16), default="temperature", server_default="temperature"
    )
    min_temp_c: Mapped[float | None] = mapped_column(Float)
    max_temp_c: Mapped[float | None] = mapped_column(Float)
    # The reading that raised a temperature alert; None for a silent sensor.
    temp_c: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[datetime]
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), default=None)
    cleared_at: Mapped[datetime | None] = mapped_column(default=None)
