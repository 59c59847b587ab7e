"""Console pages: cold chain — sensors with their effective ranges, alerts, temperature charts.

The same service calls and the same rules as ``storekeeper.telemetry.api``: everyone on the
console sees sensors and alerts (clerks those of their warehouses), only managers and admins
acknowledge an alert. Alerts refresh themselves on the ``alert.raised`` / ``alert.cleared``
live events; a sensor's chart is drawn by ``static/cold_chain.js`` (uPlot) from JSON in the
page, with a table of the same numbers below it for screen readers and browsers without script.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from storekeeper.accounts import policy, users
from storekeeper.accounts.domain import STAFF, STOCK_HANDLERS, Principal
from storekeeper.api.deps import DatabaseDep, provided
from storekeeper.api.downloads import csv_response
from storekeeper.db import Database, utcnow
from storekeeper.errors import NotFound
from storekeeper.telemetry import alerts, domain, service
from storekeeper.telemetry.store import Bucket, TelemetryStore
from storekeeper.web.session import allowed
from storekeeper.web.templating import render

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Principal, Depends(allowed(STOCK_HANDLERS))]
Staff = Annotated[Principal, Depends(allowed(STAFF))]
StoreDep = Annotated[TelemetryStore, Depends(provided("telemetry_store"))]
AlertStatus = Literal["open", "acknowledged", "cleared"]
StatusQuery = Annotated[AlertStatus | None, Query()]
BeforeQuery = Annotated[int | None, Query(ge=1, le=2**62)]
SensorPath = Annotated[str, Path(min_length=1, max_length=64)]
RangeName = Literal["hour", "day", "week", "month"]

PAGE = 25
CSV_LIMIT = 10_000
RANGES: dict[str, timedelta] = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=30),
}
"""The chart's time windows, ending now; each drawn in at most 500 buckets."""


def _visible_warehouses(who: Principal) -> frozenset[str] | None:
    """None for managers and admins (every warehouse), a clerk's assigned ones (as the API)."""
    return None if who.has_role(STAFF) else who.warehouses


# --- the overview ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertPage:
    """One page of alerts as the filter shows it, with the id the next page starts before."""

    items: list[Any]
    next_before: int | None
    acknowledgers: dict[str, str]


def _alert_page(
    db: Database, who: Principal, *, status: str | None, before: int | None
) -> AlertPage:
    with db.reading() as session:
        found = alerts.list_alerts(
            session,
            status=status,
            warehouses=_visible_warehouses(who),
            before_id=before,
            limit=PAGE + 1,
        )
        names = _acknowledgers(session, who, found[:PAGE])
    more = len(found) > PAGE
    items = found[:PAGE]
    return AlertPage(items, items[-1].id if more else None, names)


def _acknowledgers(session: Session, who: Principal, found: list[Any]) -> dict[str, str]:
    """Who acknowledged: the e-mail for managers and admins, "you" for oneself; clerks see
    "a manager" (the API gives them only an id)."""
    names: dict[str, str] = {}
    for actor in {a.acknowledged_by for a in found if a.acknowledged_by}:
        if actor == str(who.user_id):
            names[actor] = "you"
        elif who.has_role(STAFF):
            try:
                names[actor] = users.email_of(session, user_id=uuid.UUID(actor))
            except (ValueError, NotFound):
                names[actor] = "a manager"
        else:
            names[actor] = "a manager"
    return names


def _query(**params: Any) -> str:
    """``?a=1&b=2`` of the params that are set ("" when none are)."""
    kept = {k: v for k, v in params.items() if v is not None and v != ""}
    return f"?{urlencode(kept)}" if kept else ""


@router.get("/cold-chain")
def index(
    request: Request,
    principal: Viewer,
    db: DatabaseDep,
    store: StoreDep,
    status: StatusQuery = None,
    before: BeforeQuery = None,
) -> Response:
    """Sensors by warehouse and room with their effective ranges and last reading; alerts."""
    with db.reading() as session:
        views = service.list_sensors(session, warehouses=_visible_warehouses(principal))
    views.sort(key=lambda v: (v.sensor.warehouse_code, v.sensor.room, v.sensor.id))
    latest = service.latest(db=db, store=store, sensors=[v.sensor for v in views])
    page = _alert_page(db, principal, status=status, before=before)
    return render(
        request,
        "cold_chain/index.html",
        principal,
        title="Cold chain",
        sensors=views,
        latest=latest,
        page=page,
        status=status or "",
        before=before,
        may_ack=principal.has_role(STAFF),
        filter_query=_query(status=status),
        fragment_query=_query(status=status, before=before),
    )


@router.get("/cold-chain/alerts")
def alerts_fragment(
    request: Request,
    principal: Viewer,
    db: DatabaseDep,
    status: StatusQuery = None,
    before: BeforeQuery = None,
) -> Response:
    """The alerts table alone (what the live refresh swaps in); a full page without htmx."""
    if request.headers.get("HX-Request") != "true":
        return RedirectResponse(f"/cold-chain{_query(status=status, before=before)}", 303)
    page = _alert_page(db, principal, status=status, before=before)
    return render(
        request,
        "cold_chain/_alerts.html",
        principal,
        page=page,
        status=status or "",
        before=before,
        may_ack=principal.has_role(STAFF),
        filter_query=_query(status=status),
    )


@router.get("/cold-chain/alerts.csv")
def alerts_csv(principal: Viewer, db: DatabaseDep, status: StatusQuery = None) -> Response:
    """Every alert the filter shows (all pages, up to ``CSV_LIMIT``), newest first, as CSV."""
    rows: list[list[Any]] = []
    before: int | None = None
    with db.reading() as session:
        while True:
            found = alerts.list_alerts(
                session,
                status=status,
                warehouses=_visible_warehouses(principal),
                before_id=before,
                limit=500,
            )
            rows += [
                [
                    a.id,
                    a.sensor_id,
                    a.warehouse_code,
                    a.room,
                    a.status,
                    a.temp_c,
                    a.min_temp_c,
                    a.max_temp_c,
                    a.started_at.isoformat(),
                    a.raised_at.isoformat(),
                    a.acknowledged_at.isoformat() if a.acknowledged_at else "",
                    a.cleared_at.isoformat() if a.cleared_at else "",
                    a.kind,
                ]
                for a in found
            ]
            if len(found) < 500 or len(rows) >= CSV_LIMIT:
                break
            before = found[-1].id
    header = [
        "id",
        "sensor",
        "warehouse",
        "room",
        "status",
        "temp_c",
        "min_temp_c",
        "max_temp_c",
        "started_at",
        "raised_at",
        "acknowledged_at",
        "cleared_at",
        "kind",
    ]
    return csv_response(f"alerts{'-' + status if status else ''}.csv", header, rows[:CSV_LIMIT])


@router.post("/cold-chain/alerts/{alert_id}/ack")
def acknowledge(
    request: Request,
    alert_id: Annotated[int, Path(ge=1, le=2**62)],
    principal: Staff,
    db: DatabaseDep,
) -> Response:
    """Acknowledge an alert (managers and admins, as ``POST /api/v1/alerts/{id}/ack``).

    htmx gets the alert's new table row; a plain form goes back to the alerts.
    """
    with db.transaction() as session:
        alert = alerts.acknowledge(session, alert_id=alert_id, actor_id=str(principal.user_id))
        names = _acknowledgers(session, principal, [alert])
    if request.headers.get("HX-Request") != "true":
        return RedirectResponse("/cold-chain#alerts", status_code=303)
    return render(
        request,
        "cold_chain/_alert_row.html",
        principal,
        alert=alert,
        acknowledgers=names,
        may_ack=True,
        just_acknowledged=True,
    )


# --- one sensor -----------------------------------------------------------------------------


@router.get("/cold-chain/sensors/{sensor_id}")
def sensor_page(
    request: Request,
    sensor_id: SensorPath,
    principal: Viewer,
    db: DatabaseDep,
    store: StoreDep,
    range_: Annotated[RangeName, Query(alias="range")] = "day",
    format_: Annotated[Literal["html", "csv"], Query(alias="format")] = "html",
) -> Response:
    """A sensor's temperature over the last hour, day, week or month: min/max band, mean, and
    its effective range; the same numbers as a table and as CSV (``?format=csv``)."""
    with db.reading() as session:
        found = service.get_sensor_or_raise(session, sensor_id=sensor_id)
        policy.ensure_warehouses(principal, [found.warehouse_code])
        (view,) = [
            v
            for v in service.list_sensors(session, warehouses=[found.warehouse_code])
            if v.sensor.id == sensor_id
        ]
    end = utcnow()
    span = int(RANGES[range_].total_seconds()) // 60
    bucket = domain.default_bucket(span + 1)
    # Buckets on whole multiples of their width (whole hours, 6-hour blocks) since the epoch.
    first = (domain.epoch_minute(end) - span) // bucket * bucket
    start = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(minutes=first)
    points = service.series(
        db=db, store=store, sensor=sensor_id, start=start, end=end, bucket_minutes=bucket
    )
    if format_ == "csv":
        return csv_response(
            f"{sensor_id}-{range_}.csv",
            ["start", "min_temp_c", "max_temp_c", "avg_temp_c", "readings"],
            [[p.start.isoformat(), p.min, p.max, round(p.avg, 3), p.count] for p in points],
        )
    return render(
        request,
        "cold_chain/sensor.html",
        principal,
        title=f"Sensor {sensor_id}",
        view=view,
        points=points,
        # Newest first, and whether each bucket's lowest and highest are out of range.
        table=[
            (p, not view.effective.contains(p.min), not view.effective.contains(p.max))
            for p in reversed(points)
        ],
        range=range_,
        ranges=list(RANGES),
        width=bucket_words(bucket),
        start=start,
        end=end,
        chart=_chart_data(points, view, start=start, end=end, bucket=bucket),
    )


def _chart_data(
    points: list[Bucket],
    view: service.SensorView,
    *,
    start: datetime,
    end: datetime,
    bucket: int,
) -> dict[str, Any]:
    """What cold_chain.js draws: unix seconds and min/max/mean per bucket, and the range."""
    return {
        "sensor": view.sensor.id,
        "from": int(start.timestamp()),
        "to": int(end.timestamp()),
        "bucket_s": bucket * 60,
        "t": [int(p.start.timestamp()) for p in points],
        "min": [round(p.min, 3) for p in points],
        "max": [round(p.max, 3) for p in points],
        "avg": [round(p.avg, 3) for p in points],
        "low": view.effective.low,
        "high": view.effective.high,
    }


def bucket_words(minutes: int) -> str:
    """A bucket width in words: ``minute``, ``5 minutes``, ``hour``, ``6 hours``, ``day``."""
    units = ((10080, "week"), (1440, "day"), (60, "hour"), (1, "minute"))
    size, unit = next((size, unit) for size, unit in units if minutes % size == 0)
    count = minutes // size
    return unit if count == 1 else f"{count} {unit}s"
