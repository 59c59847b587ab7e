"""Reading and saving the sensors' ingest state (excursion, open alerts, counters) for a batch.

One statement each way per batch, whatever its size: ``lock`` reads (and on PostgreSQL locks,
in id order) the batch's sensors, ``save`` writes back the state of those that stored
readings. Raw SQL through ``exec_driver_sql``: this is the ingest hot path (bench W5), where
SQLAlchemy's per-row parameter and result processing cost more than the database's work; the
values are bound in the forms SQLAlchemy itself stores (aware UTC on PostgreSQL, naive UTC text
on SQLite), so ORM reads of the same rows see the same values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from storekeeper.telemetry.store import sqlite_time


@dataclass(frozen=True, slots=True)
class SensorState:
    """What ingest needs of one sensor (not ``created_at``: every column read costs here)."""

    id: str
    warehouse_code: str
    room: str
    min_temp_c: float | None
    max_temp_c: float | None
    last_ts: datetime | None
    excursion_started_at: datetime | None
    open_alert_id: int | None
    silent_alert_id: int | None


@dataclass(frozen=True, slots=True)
class SavedState:
    """A sensor's state after a batch, and how many of the batch's readings it stored."""

    id: str
    last_ts: datetime | None
    excursion_started_at: datetime | None
    open_alert_id: int | None
    stored: int


_SELECT = (
    "SELECT id, warehouse_code, room, min_temp_c, max_temp_c, last_ts, excursion_started_at, "
    "open_alert_id, silent_alert_id FROM telemetry_sensor WHERE id IN ({ids}) ORDER BY id"
)
# The silence alert always clears with a stored reading (``service._evaluate``): NULL here.
_UPDATE_SQLITE = (
    "UPDATE telemetry_sensor SET last_ts = ?, excursion_started_at = ?, open_alert_id = ?, "
    "silent_alert_id = NULL, stored_count = stored_count + ? WHERE id = ?"
)
_UPDATE_POSTGRES = (
    "UPDATE telemetry_sensor AS s SET last_ts = v.last_ts, "
    "excursion_started_at = v.started_at, open_alert_id = v.alert_id, silent_alert_id = NULL, "
    "stored_count = s.stored_count + v.stored "
    "FROM (VALUES {rows}) AS v (id, last_ts, started_at, alert_id, stored) WHERE s.id = v.id"
)
_POSTGRES_ROW = "(%s, %s::timestamptz, %s::timestamptz, %s::bigint, %s::bigint)"


def lock(connection: Connection, ids: Sequence[str], *, dialect: str) -> dict[str, SensorState]:
    """The sensors with these ids (sorted, unique), by id; locked until commit on PostgreSQL.

    On SQLite the caller's ``BEGIN IMMEDIATE`` already holds the only write lock.
    """
    if not ids:
        return {}
    postgres = dialect == "postgresql"
    marks = ", ".join(["%s" if postgres else "?"] * len(ids))
    sql = _SELECT.format(ids=marks) + (" FOR UPDATE" if postgres else "")
    return {
        row[0]: SensorState(
            row[0], row[1], row[2], row[3], row[4], _aware(row[5]), _aware(row[6]), row[7], row[8]
        )
        for row in connection.exec_driver_sql(sql, tuple(ids))
    }


def save(connection: Connection, states: Sequence[SavedState], *, dialect: str) -> None:
    """Write back each sensor's state, clear its silence alert, add its stored readings."""
    if not states:
        return
    if dialect == "postgresql":
        params: list[Any] = []
        for s in states:
            params += (s.id, s.last_ts, s.excursion_started_at, s.open_alert_id, s.stored)
        rows = ", ".join([_POSTGRES_ROW] * len(states))
        connection.exec_driver_sql(_UPDATE_POSTGRES.format(rows=rows), tuple(params))
        return
    connection.exec_driver_sql(
        _UPDATE_SQLITE,
        [
            (_text(s.last_ts), _text(s.excursion_started_at), s.open_alert_id, s.stored, s.id)
            for s in states
        ],
    )


def _aware(value: datetime | str | None) -> datetime | None:
    """A stored timestamp as an aware UTC datetime (SQLite hands back naive UTC text)."""
    if value is None:
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _text(value: datetime | None) -> str | None:
    return None if value is None else sqlite_time(value)
