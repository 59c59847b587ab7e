"""Where readings and their minute aggregates live: the ``TelemetryStore`` port and its SQL adapter.

The SQL store writes in the caller's transaction, so readings, per-sensor counters and alerts
commit together. ``storekeeper.telemetry.mongo`` is the other adapter, chosen when
``STOREKEEPER_TELEMETRY_URL=mongodb://…``. Sensors, counters and alerts stay in the main
database either way: they are small and must commit with their outbox events.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import Table, delete, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from storekeeper.telemetry.domain import epoch_minute
from storekeeper.telemetry.models import MinuteAggregate, Reading

_reading = cast(Table, Reading.__table__)
_minute = cast(Table, MinuteAggregate.__table__)

Key = tuple[str, datetime]
"""A reading's identity: sensor id and timestamp (aware, UTC)."""


@dataclass(frozen=True, slots=True)
class StoredReading:
    """A validated reading on its way into the store."""

    sensor: str
    ts: datetime
    temp_c: float
    humidity: float | None
    via: str

    @property
    def key(self) -> Key:
        """Sensor and UTC timestamp: what makes two readings the same reading."""
        ts = self.ts
        return (self.sensor, ts if ts.tzinfo is UTC else ts.astimezone(UTC))

    def document(self) -> dict[str, Any]:
        """The stored document (the key columns aside)."""
        return {"temp_c": self.temp_c, "humidity": self.humidity, "via": self.via}


@dataclass(frozen=True, slots=True)
class MinuteRow:
    """Aggregates of newly stored readings of one sensor in one epoch minute."""

    sensor: str
    minute: int
    count: int
    temp_sum: float
    temp_min: float
    temp_max: float


@dataclass(frozen=True, slots=True)
class Bucket:
    """One point of a series: temperature statistics of the readings in [start, start + width)."""

    start: datetime
    min: float
    max: float
    avg: float
    count: int


class TelemetryStore(Protocol):
    """Stores raw readings once each, keeps minute aggregates, answers series, forgets old data."""

    def add(self, session: Session, readings: Sequence[StoredReading]) -> set[Key]:
        """Store the readings not stored before, fold them into the minute aggregates, and
        return their keys (a reading already stored is left alone and not counted twice)."""
        ...

    def series(
        self, session: Session, *, sensor: str, start_minute: int, end_minute: int, bucket: int
    ) -> list[Bucket]:
        """Buckets of ``bucket`` minutes from ``start_minute`` up to ``end_minute`` (exclusive),
        from the minute aggregates; empty buckets are left out."""
        ...

    def raw(self, session: Session, *, sensor: str, start: datetime, end: datetime) -> int:
        """How many raw readings of ``sensor`` are kept in [start, end)."""
        ...

    def sweep(
        self, session: Session, *, raw_before: datetime, minutes_before: int
    ) -> tuple[int, int]:
        """Delete raw readings older than ``raw_before`` and aggregates of minutes before
        ``minutes_before``; return how many of each went."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def minute_rows(readings: Iterable[StoredReading]) -> list[MinuteRow]:
    """Fold readings into per-sensor, per-minute aggregates, in (sensor, minute) order.

    The order matters on PostgreSQL: concurrent batches upsert the same rows, and taking their
    locks in one global order means they queue instead of deadlocking.
    """
    groups: dict[tuple[str, int], list[float]] = defaultdict(list)
    for reading in readings:
        groups[(reading.sensor, epoch_minute(reading.ts))].append(reading.temp_c)
    return [
        MinuteRow(sensor, minute, len(temps), sum(temps), min(temps), max(temps))
        for (sensor, minute), temps in sorted(groups.items())
    ]


def bucket_start(minute: int) -> datetime:
    """The UTC moment an epoch minute starts."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(minutes=minute)


class SqlStore:
    """Readings in ``telemetry_reading`` (JSON/JSONB documents), aggregates in ``telemetry_minute``.

    A batch of up to ``_ROWS_PER_STATEMENT`` readings is two statements: one multi-row
    ``INSERT … ON CONFLICT DO NOTHING RETURNING`` (it returns the readings stored now, so
    duplicates of stored ones are told apart without a read) and one multi-row upsert of the
    minute aggregates. Raw SQL through ``exec_driver_sql``, in the caller's transaction: this is
    the ingest hot path (bench W5), and SQLAlchemy's per-row parameter and result processing
    cost more than the database's work. Values are bound in the forms SQLAlchemy itself stores
    (``sqlite_time``), so ORM and Core reads of these rows see the same values.
    """

    def __init__(self, dialect: str) -> None:
        self._postgres = dialect == "postgresql"

    def add(self, session: Session, readings: Sequence[StoredReading]) -> set[Key]:
        connection = session.connection()
        stored: set[Key] = set()
        for start in range(0, len(readings), _ROWS_PER_STATEMENT):
            stored |= self._insert(connection, readings[start : start + _ROWS_PER_STATEMENT])
        rows = minute_rows(r for r in readings if r.key in stored)
        mark = "%s" if self._postgres else "?"
        for start in range(0, len(rows), _ROWS_PER_STATEMENT):
            chunk = rows[start : start + _ROWS_PER_STATEMENT]
            values: list[Any] = []
            for row in chunk:
                values += (row.sensor, row.minute, row.count)
                values += (row.temp_sum, row.temp_min, row.temp_max)
            connection.exec_driver_sql(
                _UPSERT_MINUTES.format(
                    rows=", ".join([f"({', '.join([mark] * 6)})"] * len(chunk)),
                    low="least" if self._postgres else "min",
                    high="greatest" if self._postgres else "max",
                ),
                tuple(values),
            )
        return stored

    def _insert(self, connection: Connection, readings: Sequence[StoredReading]) -> set[Key]:
        """Insert ``readings`` in one statement; the keys of those not stored before."""
        received_at = _now()
        params: list[Any] = []
        if self._postgres:
            for r in readings:
                params += (r.sensor, r.ts, json.dumps(r.document()), received_at)
            result = connection.exec_driver_sql(
                _INSERT_READINGS.format(
                    rows=", ".join(["(%s, %s, %s::jsonb, %s)"] * len(readings))
                ),
                tuple(params),
            )
            return {(sensor, ts.astimezone(UTC)) for sensor, ts in result}
        received = sqlite_time(received_at)
        keys: dict[tuple[str, str], Key] = {}  # as SQLite hands them back -> as the caller knows
        for r in readings:
            key = r.key
            text = sqlite_time(key[1])
            keys[(key[0], text)] = key
            params += (key[0], text, json.dumps(r.document()), received)
        result = connection.exec_driver_sql(
            _INSERT_READINGS.format(rows=", ".join(["(?, ?, ?, ?)"] * len(readings))),
            tuple(params),
        )
        return {keys[(sensor, ts)] for sensor, ts in result}

    def series(
        self, session: Session, *, sensor: str, start_minute: int, end_minute: int, bucket: int
    ) -> list[Bucket]:
        index = ((_minute.c.minute - start_minute) // bucket).label("b")
        query = (
            select(
                index,
                func.min(_minute.c.temp_min),
                func.max(_minute.c.temp_max),
                func.sum(_minute.c.temp_sum),
                func.sum(_minute.c.count),
            )
            .where(
                _minute.c.sensor_id == sensor,
                _minute.c.minute >= start_minute,
                _minute.c.minute < end_minute,
            )
            .group_by(index)
            .order_by(index)
        )
        return [
            Bucket(
                start=bucket_start(start_minute + int(b) * bucket),
                min=float(low),
                max=float(high),
                avg=float(total) / int(count),
                count=int(count),
            )
            for b, low, high, total, count in session.execute(query)
        ]

    def raw(self, session: Session, *, sensor: str, start: datetime, end: datetime) -> int:
        query = select(func.count()).where(
            _reading.c.sensor_id == sensor, _reading.c.ts >= start, _reading.c.ts < end
        )
        return int(session.scalar(query) or 0)

    def sweep(
        self, session: Session, *, raw_before: datetime, minutes_before: int
    ) -> tuple[int, int]:
        raw = session.execute(delete(_reading).where(_reading.c.ts < raw_before))
        minutes = session.execute(delete(_minute).where(_minute.c.minute < minutes_before))
        return int(raw.rowcount or 0), int(minutes.rowcount or 0)  # type: ignore[attr-defined]

    def close(self) -> None:
        """Nothing to release: the main database's engine belongs to the container."""


# 1000 rows of 6 values stay well below SQLite's 32766 and PostgreSQL's 65535 parameters.
_ROWS_PER_STATEMENT = 1000
_PG_ROW = "(%s, %s, %s::jsonb, %s)"
_INSERT_READINGS = (
    "INSERT INTO telemetry_reading (sensor_id, ts, doc, received_at) VALUES {rows} "
    "ON CONFLICT DO NOTHING RETURNING sensor_id, ts"
)
# Counts and sums add up, extremes widen. SQLite's two-argument min()/max() are scalar
# functions, like PostgreSQL's least/greatest. Rows are unique per (sensor, minute) and sorted
# (``minute_rows``), so one statement may upsert them all and concurrent batches lock in order.
_UPSERT_MINUTES = (
    "INSERT INTO telemetry_minute (sensor_id, minute, count, temp_sum, temp_min, temp_max) "
    "VALUES {rows} ON CONFLICT (sensor_id, minute) DO UPDATE SET "
    "count = telemetry_minute.count + excluded.count, "
    "temp_sum = telemetry_minute.temp_sum + excluded.temp_sum, "
    "temp_min = {low}(telemetry_minute.temp_min, excluded.temp_min), "
    "temp_max = {high}(telemetry_minute.temp_max, excluded.temp_max)"
)


def sqlite_time(moment: datetime) -> str:
    """An aware datetime as SQLAlchemy stores it on SQLite: UTC, no zone, microseconds."""
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    return utc.isoformat(" ", "microseconds")[:26]  # without the "+00:00"


def _now() -> datetime:
    return datetime.now(UTC)
