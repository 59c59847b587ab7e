"""Use cases of the telemetry context: sensors, ingestion, series, alerts, retention.

``ingest`` is the one way in for readings: the HTTP, MQTT and TCP transports only parse their
wire format and call it, so all three accept, reject and count alike. It is a transaction
boundary of its own (it commits), because each transport calls it as the whole of its work for
one batch.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storekeeper.accounts.domain import STAFF, Principal, Role
from storekeeper.catalog import service as catalog_service
from storekeeper.config import Settings
from storekeeper.db import Database, utcnow
from storekeeper.errors import Conflict, NotFound
from storekeeper.inventory import levels as inventory_levels
from storekeeper.inventory import warehouses as inventory_warehouses
from storekeeper.inventory.warehouses import UnknownWarehouse
from storekeeper.observability import metrics
from storekeeper.telemetry import domain, sensor_state
from storekeeper.telemetry.alerts import apply_transitions, clear_silent
from storekeeper.telemetry.domain import Excursion, TempRange
from storekeeper.telemetry.models import Sensor, SensorStat
from storekeeper.telemetry.readings import ReadingIn, Transport, Verdict
from storekeeper.telemetry.sensor_state import SavedState, SensorState
from storekeeper.telemetry.store import Bucket, StoredReading, TelemetryStore

_sensor = cast(Table, Sensor.__table__)
_stat = cast(Table, SensorStat.__table__)

STORED = "stored"
DUPLICATE = "duplicate"


class UnknownSensor(NotFound):
    """No sensor has that id."""

    code = "unknown_sensor"


class DuplicateSensor(Conflict):
    """A sensor with that id exists already."""

    code = "duplicate_sensor"


# --- sensors --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SensorView:
    """A sensor with its effective range and how its readings fared so far."""

    sensor: Sensor
    effective: TempRange
    counts: dict[str, int]


def create_sensor(
    session: Session,
    *,
    id: str,
    warehouse: str,
    room: str,
    min_temp_c: float | None,
    max_temp_c: float | None,
) -> Sensor:
    """Register a sensor in a room of an existing warehouse."""
    if not inventory_warehouses.has_warehouse(session, code=warehouse):
        raise UnknownWarehouse(f"no warehouse with code {warehouse}")
    if session.get(Sensor, id) is not None:
        raise DuplicateSensor(f"sensor {id} exists already")
    sensor = Sensor(
        id=id, warehouse_code=warehouse, room=room, min_temp_c=min_temp_c, max_temp_c=max_temp_c
    )
    session.add(sensor)
    session.flush()
    return sensor


def list_sensors(session: Session, *, warehouses: Iterable[str] | None = None) -> list[SensorView]:
    """Sensors (of ``warehouses`` when given) in id order, with ranges and outcome counts."""
    query = select(Sensor).order_by(Sensor.id)
    if warehouses is not None:
        query = query.where(Sensor.warehouse_code.in_(sorted(warehouses)))
    sensors = list(session.scalars(query))
    counts: dict[str, dict[str, int]] = {
        s.id: {STORED: s.stored_count} if s.stored_count else {} for s in sensors
    }
    ids = [s.id for s in sensors]
    if ids:
        for sensor_id, outcome, count in session.execute(
            select(_stat.c.sensor_id, _stat.c.outcome, _stat.c.count).where(
                _stat.c.sensor_id.in_(ids)
            )
        ):
            counts[sensor_id][outcome] = int(count)
    products = {
        code: product_ranges(session, warehouse=code)
        for code in {s.warehouse_code for s in sensors}
    }
    return [
        SensorView(s, domain.effective_range(_room(s), products[s.warehouse_code]), counts[s.id])
        for s in sensors
    ]


def get_sensor_or_raise(session: Session, *, sensor_id: str) -> Sensor:
    """The sensor with this id."""
    sensor = session.get(Sensor, sensor_id)
    if sensor is None:
        raise UnknownSensor(f"no sensor with id {sensor_id}")
    return sensor


def product_ranges(session: Session, *, warehouse: str) -> list[TempRange]:
    """The storage ranges of the products with stock in ``warehouse`` (asked of their owners)."""
    skus = inventory_levels.skus_on_hand(session, warehouse=warehouse)
    if not skus:
        return []
    return [
        TempRange(low, high) for low, high in catalog_service.temperature_ranges(session, skus=skus)
    ]


def _room(sensor: Any) -> TempRange:
    return TempRange(sensor.min_temp_c, sensor.max_temp_c)


# --- ingestion ------------------------------------------------------------------------------


def ingest(
    principal: Principal,
    readings: Sequence[ReadingIn],
    *,
    transport: Transport,
    db: Database,
    store: TelemetryStore,
    settings: Settings,
) -> list[Verdict]:
    """Validate, store once and evaluate ``readings``; one verdict per reading, in order.

    A device may send for sensors of its bound warehouse; managers and admins for any sensor,
    over HTTP only. Readings of unknown sensors, out of the caller's scope, non-finite or
    physically impossible, more than five minutes ahead or older than the raw retention are
    rejected with a reason. A reading already stored (same sensor and timestamp) is answered
    ``duplicate`` and stored once. Every outcome is counted in the metrics and, for known
    sensors, durably (stored ones on the sensor row, the others in ``telemetry_sensor_stat``).
    """
    if not readings:
        return []
    now = utcnow()
    oldest = now - timedelta(days=settings.telemetry_raw_retention_days)
    outcomes: list[str] = [""] * len(readings)
    with db.transaction() as session:
        ids = sorted({r.sensor for r in readings})
        sensors = sensor_state.lock(session.connection(), ids, dialect=db.dialect)
        accepted: dict[tuple[str, datetime], int] = {}  # key -> index of its first reading
        for index, reading in enumerate(readings):
            sensor = sensors.get(reading.sensor)
            if sensor is None:
                outcomes[index] = "unknown_sensor"
            elif not _may_send(principal, sensor.warehouse_code, transport):
                outcomes[index] = "not_allowed"
            elif reason := domain.rejection(reading, now=now, oldest=oldest):
                outcomes[index] = reason
            elif (key := (reading.sensor, reading.ts.astimezone(UTC))) in accepted:
                outcomes[index] = DUPLICATE
            else:
                accepted[key] = index
        batch = [
            StoredReading(r.sensor, r.ts.astimezone(UTC), r.temp_c, r.humidity, transport)
            for r in (readings[i] for i in accepted.values())
        ]
        stored = store.add(session, batch)
        for key, index in accepted.items():
            outcomes[index] = STORED if key in stored else DUPLICATE
        _count(session, db.dialect, readings, outcomes, sensors)
        fresh = [r for r in batch if r.key in stored]
        transitions = _evaluate(
            session,
            db.dialect,
            sensors,
            fresh,
            grace=timedelta(seconds=settings.alert_grace_s),
        )
    for (outcome, reason), n in Counter(_metric_labels(o) for o in outcomes).items():
        metrics.TELEMETRY_READINGS.labels(transport, outcome, reason).inc(n)
    for transition, n in Counter(transitions).items():
        metrics.ALERTS.labels(transition).inc(n)
    return [_verdict(o) for o in outcomes]


def _may_send(principal: Principal, warehouse: str, transport: Transport) -> bool:
    if principal.role is Role.DEVICE:
        return principal.scope == f"warehouse:{warehouse}"
    return transport == "http" and principal.has_role(STAFF)


def _verdict(outcome: str) -> Verdict:
    if outcome == STORED:
        return Verdict(stored=True)
    if outcome == DUPLICATE:
        return Verdict(stored=True, reason=DUPLICATE)
    return Verdict(stored=False, reason=outcome)


def _metric_labels(outcome: str) -> tuple[str, str]:
    if outcome == STORED:
        return STORED, ""
    if outcome == DUPLICATE:
        return DUPLICATE, ""
    return "rejected", outcome


def _count(
    session: Session,
    dialect: str,
    readings: Sequence[ReadingIn],
    outcomes: Sequence[str],
    sensors: dict[str, Any],
) -> None:
    """Add this batch's other outcomes than stored to the per-sensor counters (known sensors)."""
    tally = Counter(
        (r.sensor, outcome)
        for r, outcome in zip(readings, outcomes, strict=True)
        if r.sensor in sensors and outcome != STORED
    )
    if not tally:
        return
    statement = _stat_upsert(dialect)
    # Sorted: concurrent batches lock counter rows in one order (no deadlock on PostgreSQL).
    session.connection().execute(
        statement,
        [{"sensor_id": s, "outcome": o, "count": n} for (s, o), n in sorted(tally.items())],
    )


def _stat_upsert(dialect: str) -> Any:
    """INSERT a counter row or add to the one there."""
    statement: Any = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_stat)
    return statement.on_conflict_do_update(
        index_elements=[_stat.c.sensor_id, _stat.c.outcome],
        set_={"count": _stat.c.count + statement.excluded["count"]},
    )


def _evaluate(
    session: Session,
    dialect: str,
    sensors: dict[str, SensorState],
    fresh: Sequence[StoredReading],
    *,
    grace: timedelta,
) -> list[str]:
    """Run newly stored readings through each sensor's excursion state; raise or clear alerts.

    Returns the transitions made (``raised``/``cleared``) for the metrics, counted after commit.
    """
    by_sensor: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for reading in fresh:
        by_sensor[reading.sensor].append((reading.ts, reading.temp_c))
    if not by_sensor:
        return []
    ranges = {
        code: product_ranges(session, warehouse=code)
        for code in {sensors[s].warehouse_code for s in by_sensor}
    }
    changes: list[SavedState] = []
    made: list[str] = []
    for sensor_id in sorted(by_sensor):
        row = sensors[sensor_id]
        before = Excursion(
            last_ts=row.last_ts,
            started_at=row.excursion_started_at,
            alerting=row.open_alert_id is not None,
        )
        allowed = domain.effective_range(_room(row), ranges[row.warehouse_code])
        after, transitions = domain.evaluate(
            before, by_sensor[sensor_id], allowed=allowed, grace=grace
        )
        alert_id = apply_transitions(session, row, allowed, transitions)
        made += ["raised" if t.raise_ else "cleared" for t in transitions]
        if row.silent_alert_id is not None:  # it speaks again: its silence alert clears
            ts, temp_c = min(by_sensor[sensor_id])
            clear_silent(session, row, ts=ts, temp_c=temp_c)
            made.append("cleared")
        changes.append(
            SavedState(
                sensor_id, after.last_ts, after.started_at, alert_id, len(by_sensor[sensor_id])
            )
        )
    sensor_state.save(session.connection(), changes, dialect=dialect)
    return made


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- series ---------------------------------------------------------------------------------


def series(
    *,
    db: Database,
    store: TelemetryStore,
    sensor: str,
    start: datetime,
    end: datetime,
    bucket_minutes: int,
) -> list[Bucket]:
    """Temperature buckets of ``sensor`` over [start, end), aligned to whole minutes."""
    start_minute = domain.epoch_minute(start)
    end_minute = -(-int(end.timestamp()) // 60)  # ceiling: the minute of ``end`` counts
    with db.reading() as session:
        return store.series(
            session,
            sensor=sensor,
            start_minute=start_minute,
            end_minute=end_minute,
            bucket=bucket_minutes,
        )


def latest(*, db: Database, store: TelemetryStore, sensors: Iterable[Sensor]) -> dict[str, Bucket]:
    """The newest minute of readings of each sensor that has any (its min, max and mean), from
    the minute aggregates: one indexed read per sensor, whichever store keeps them."""
    found: dict[str, Bucket] = {}
    with db.reading() as session:
        for sensor in sensors:
            if sensor.last_ts is None:
                continue
            minute = domain.epoch_minute(_aware(sensor.last_ts) or sensor.last_ts)
            points = store.series(
                session, sensor=sensor.id, start_minute=minute, end_minute=minute + 1, bucket=1
            )
            if points:
                found[sensor.id] = points[-1]
    return found


# --- retention ------------------------------------------------------------------------------


def sweep_retention(*, db: Database, store: TelemetryStore, settings: Settings) -> tuple[int, int]:
    """Forget raw readings past the raw retention and minute aggregates past theirs."""
    now = utcnow()
    raw_before = now - timedelta(days=settings.telemetry_raw_retention_days)
    minutes_before = domain.epoch_minute(
        now - timedelta(days=settings.telemetry_minute_retention_days)
    )
    with db.transaction() as session:
        return store.sweep(session, raw_before=raw_before, minutes_before=minutes_before)
