"""Where readings and their minute aggregates live: the ``TelemetryStore`` port and its SQL adapter.

The SQL store writes in the caller's transaction, so readings, per-sensor counters and alerts
commit together. ``storekeeper.telemetry.mongo`` is the other adapter, chosen when
``STOREKEEPER_TELEMETRY_URL=mongodb://…``. Sensors, counters and alerts stay in the main
database either way: they are small and must commit with their outbox events.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storekeeper.db import insert_ignoring_conflicts
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
        return (self.sensor, self.ts.astimezone(UTC))

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

    Core statements, not ORM objects: this is the ingest hot path (bench W5), and a batch is one
    multi-row INSERT … ON CONFLICT DO NOTHING RETURNING plus one upsert executemany. (A
    multi-row upsert statement measured slower: SQLAlchemy compiles it anew for every batch.)
    """

    def __init__(self, dialect: str) -> None:
        self._insert = insert_ignoring_conflicts(dialect, _reading).returning(
            _reading.c.sensor_id, _reading.c.ts
        )
        self._upsert = _minute_upsert(dialect)

    def add(self, session: Session, readings: Sequence[StoredReading]) -> set[Key]:
        if not readings:
            return set()
        connection = session.connection()
        received_at = _now()
        result = connection.execute(
            self._insert,
            [
                {"sensor_id": r.sensor, "ts": r.ts, "doc": r.document(), "received_at": received_at}
                for r in readings
            ],
        )
        stored = {(row.sensor_id, row.ts.astimezone(UTC)) for row in result}
        rows = minute_rows(r for r in readings if r.key in stored)
        if rows:
            connection.execute(
                self._upsert,
                [
                    {
                        "sensor_id": row.sensor,
                        "minute": row.minute,
                        "count": row.count,
                        "temp_sum": row.temp_sum,
                        "temp_min": row.temp_min,
                        "temp_max": row.temp_max,
                    }
                    for row in rows
                ],
            )
        return stored

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


def _minute_upsert(dialect: str) -> Any:
    """INSERT a minute row, or add to the one there: counts and sums add up, extremes widen."""
    postgres = dialect == "postgresql"
    statement: Any = (postgresql.insert if postgres else sqlite.insert)(_minute)
    # SQLite's two-argument min()/max() are scalar functions, like PostgreSQL's least/greatest.
    low = getattr(func, "least" if postgres else "min")
    high = getattr(func, "greatest" if postgres else "max")
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[_minute.c.sensor_id, _minute.c.minute],
        set_={
            "count": _minute.c.count + excluded["count"],
            "temp_sum": _minute.c.temp_sum + excluded["temp_sum"],
            "temp_min": low(_minute.c.temp_min, excluded["temp_min"]),
            "temp_max": high(_minute.c.temp_max, excluded["temp_max"]),
        },
    )


def _now() -> datetime:
    return datetime.now(UTC)
