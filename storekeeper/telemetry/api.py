"""HTTP routes of the telemetry context: sensors, reading batches, series and alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status

from storekeeper.accounts import policy
from storekeeper.accounts.domain import DEVICES, STAFF, STOCK_HANDLERS, Principal
from storekeeper.api.deps import DatabaseDep, provided, require
from storekeeper.api.errors import responses
from storekeeper.db import utcnow
from storekeeper.errors import InvalidRequest
from storekeeper.telemetry import alerts, domain, service
from storekeeper.telemetry.models import Alert
from storekeeper.telemetry.readings import ReadingIn
from storekeeper.telemetry.schemas import (
    AlertRead,
    AlertStatus,
    BucketRead,
    IngestResult,
    SensorCreate,
    SensorRead,
    TelemetryBatch,
    VerdictRead,
)
from storekeeper.telemetry.store import TelemetryStore
from storekeeper.telemetry.transports import Ingest

router = APIRouter(tags=["telemetry"])
Staff = Annotated[Principal, Depends(require(STAFF))]
StockHandler = Annotated[Principal, Depends(require(STOCK_HANDLERS))]
Sender = Annotated[Principal, Depends(require(DEVICES | STAFF))]
SensorPath = Annotated[str, Path(min_length=1, max_length=64)]
IngestDep = Annotated[Ingest, Depends(provided("telemetry_ingest"))]
StoreDep = Annotated[TelemetryStore, Depends(provided("telemetry_store"))]
_DATE_TIME = {"format": "date-time"}


def _visible_warehouses(who: Principal) -> frozenset[str] | None:
    """None for managers and admins (every warehouse), a clerk's assigned ones otherwise."""
    return None if who.has_role(STAFF) else who.warehouses


def _sensor_read(view: service.SensorView) -> SensorRead:
    sensor = view.sensor
    return SensorRead(
        id=sensor.id,
        warehouse=sensor.warehouse_code,
        room=sensor.room,
        min_temp_c=sensor.min_temp_c,
        max_temp_c=sensor.max_temp_c,
        effective_min_temp_c=view.effective.low,
        effective_max_temp_c=view.effective.high,
        open_alert_id=sensor.open_alert_id,
        counts=view.counts,
        created_at=sensor.created_at,
    )


def _alert_read(alert: Alert) -> AlertRead:
    return AlertRead(
        id=alert.id,
        sensor=alert.sensor_id,
        warehouse=alert.warehouse_code,
        room=alert.room,
        status=alert.status,  # the table's CHECKs keep status and kind to the known ones
        kind=alert.kind,
        min_temp_c=alert.min_temp_c,
        max_temp_c=alert.max_temp_c,
        temp_c=alert.temp_c,
        started_at=alert.started_at,
        raised_at=alert.raised_at,
        acknowledged_at=alert.acknowledged_at,
        acknowledged_by=alert.acknowledged_by,
        cleared_at=alert.cleared_at,
    )


@router.post(
    "/sensors",
    status_code=status.HTTP_201_CREATED,
    response_model=SensorRead,
    responses=responses(401, 403, 404, 409, 422),
)
def create_sensor(body: SensorCreate, _: Staff, db: DatabaseDep) -> SensorRead:
    """Register a sensor in a warehouse room (managers and admins)."""
    with db.transaction() as session:
        service.create_sensor(session, **body.model_dump())
        (view,) = [
            v
            for v in service.list_sensors(session, warehouses=[body.warehouse])
            if v.sensor.id == body.id
        ]
    return _sensor_read(view)


@router.get("/sensors", response_model=list[SensorRead], responses=responses(401, 403))
def list_sensors(who: StockHandler, db: DatabaseDep) -> list[SensorRead]:
    """Sensors with their effective ranges and reading counts; clerks see their warehouses'."""
    with db.reading() as session:
        views = service.list_sensors(session, warehouses=_visible_warehouses(who))
    return [_sensor_read(v) for v in views]


@router.post("/telemetry", response_model=IngestResult, responses=responses(401, 403, 422))
def post_readings(body: TelemetryBatch, who: Sender, ingest: IngestDep) -> IngestResult:
    """Store a batch of readings (devices for their warehouse's sensors, managers for any).

    Answers 200 with one result per reading, in order; only a malformed body is a 422."""
    readings = [ReadingIn(r.sensor, r.ts, r.temp_c, r.humidity) for r in body.readings]
    verdicts = ingest(who, readings, transport="http")
    stored = sum(v.stored for v in verdicts)
    return IngestResult(
        results=[VerdictRead(stored=v.stored, reason=v.reason) for v in verdicts],
        stored=stored,
        rejected=len(verdicts) - stored,
    )


@router.get(
    "/telemetry/{sensor}",
    response_model=list[BucketRead],
    responses=responses(401, 403, 404, 422),
)
def get_series(
    sensor: SensorPath,
    who: StockHandler,
    db: DatabaseDep,
    store: StoreDep,
    start: Annotated[
        str | None, Query(alias="from", max_length=64, json_schema_extra=_DATE_TIME)
    ] = None,
    end: Annotated[
        str | None, Query(alias="to", max_length=64, json_schema_extra=_DATE_TIME)
    ] = None,
    bucket: Annotated[str | None, Query(max_length=16, examples=["5m", "1h", "1d"])] = None,
) -> list[BucketRead]:
    """Temperature min/max/avg/count per bucket over [from, to) (default: the last 24 hours).

    ``bucket`` is whole minutes, hours or days (``1m``, ``5m``, ``1h``, ``1d``); without it, the
    smallest of 1m, 5m, 15m, 1h, 6h, 1d, 7d that gives at most 500 points. Times without an
    offset are taken as UTC. Buckets with no readings are left out."""
    until = _moment("to", end) if end is not None else utcnow()
    since = _moment("from", start) if start is not None else _day_before(until)
    if since >= until:
        raise InvalidRequest("'from' must be before 'to'", code="bad_range")
    span = domain.epoch_minute(until) - domain.epoch_minute(since) + 1
    try:
        minutes = domain.parse_bucket(bucket) if bucket else domain.default_bucket(span)
    except ValueError as exc:
        raise InvalidRequest(str(exc), code="bad_bucket") from exc
    if span / minutes > domain.MAX_POINTS:
        raise InvalidRequest(
            f"{span // minutes} buckets asked for; at most {domain.MAX_POINTS}: "
            "choose a wider bucket or a shorter range",
            code="too_many_buckets",
        )
    with db.reading() as session:
        found = service.get_sensor_or_raise(session, sensor_id=sensor)
    policy.ensure_warehouses(who, [found.warehouse_code])
    points = service.series(
        db=db, store=store, sensor=sensor, start=since, end=until, bucket_minutes=minutes
    )
    return [
        BucketRead(start=p.start, min=p.min, max=p.max, avg=p.avg, count=p.count) for p in points
    ]


def _moment(name: str, text: str) -> datetime:
    """An ISO 8601 date-time from a query parameter, in UTC (no offset: taken as UTC)."""
    try:
        moment = datetime.fromisoformat(text)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidRequest(
            f"{name!r} is not an ISO 8601 date-time such as 2026-11-22T10:00:00Z",
            code="bad_time",
        ) from None


def _day_before(moment: datetime) -> datetime:
    try:
        return moment - timedelta(days=1)
    except OverflowError:
        raise InvalidRequest("'to' is too early", code="bad_time") from None


@router.get("/alerts", response_model=list[AlertRead], responses=responses(401, 403, 422))
def list_alerts(
    who: StockHandler,
    db: DatabaseDep,
    status_: Annotated[AlertStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AlertRead]:
    """Alerts, newest first; clerks see those of their warehouses."""
    with db.reading() as session:
        found = alerts.list_alerts(
            session, status=status_, warehouses=_visible_warehouses(who), limit=limit
        )
    return [_alert_read(a) for a in found]


@router.post(
    "/alerts/{alert_id}/ack", response_model=AlertRead, responses=responses(401, 403, 404, 422)
)
def acknowledge_alert(
    alert_id: Annotated[int, Path(ge=1, le=2**62)], who: Staff, db: DatabaseDep
) -> AlertRead:
    """Acknowledge an alert (managers and admins); doing it again changes nothing."""
    with db.transaction() as session:
        alert = alerts.acknowledge(session, alert_id=alert_id, actor_id=str(who.user_id))
        return _alert_read(alert)
