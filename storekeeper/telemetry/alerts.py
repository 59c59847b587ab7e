"""Alerts: raising and clearing them as excursions demand, listing and acknowledging them.

Raising writes the alert row and its ``alert.raised`` outbox event in the ingest transaction, so
an alert exists if and only if its event does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storekeeper.db import utcnow
from storekeeper.errors import NotFound
from storekeeper.events import outbox
from storekeeper.telemetry.domain import TempRange, Transition
from storekeeper.telemetry.events import AlertCleared, AlertRaised
from storekeeper.telemetry.models import Alert

STATUSES = ("open", "acknowledged", "cleared")


class UnknownAlert(NotFound):
    """No alert has that id."""

    code = "unknown_alert"


def apply_transitions(
    session: Session, sensor: Any, allowed: TempRange, transitions: Sequence[Transition]
) -> int | None:
    """Raise or clear ``sensor``'s alert as ``transitions`` say; the id of its open alert after."""
    alert_id: int | None = sensor.open_alert_id
    for transition in transitions:
        if transition.raise_:
            alert_id = _raise(session, sensor, allowed, transition)
        elif alert_id is not None:
            _clear(session, sensor, alert_id, transition)
            alert_id = None
    return alert_id


def _raise(session: Session, sensor: Any, allowed: TempRange, transition: Transition) -> int:
    # Reading time, like started_at and cleared_at: a batch (or a sensor's backlog) that raises
    # and clears in one go must not get a wall-clock raised_at after its cleared_at.
    return _open(
        session,
        sensor,
        allowed,
        kind=TEMPERATURE,
        temp_c=transition.temp_c,
        started_at=transition.started_at or transition.ts,
        raised_at=transition.ts,
    )


def _clear(session: Session, sensor: Any, alert_id: int, transition: Transition) -> None:
    _close(session, sensor, alert_id, kind=TEMPERATURE, ts=transition.ts, temp_c=transition.temp_c)


TEMPERATURE = "temperature"
SILENT = "sensor.silent"


def raise_silent(session: Session, sensor: Any, allowed: TempRange) -> int:
    """Raise ``sensor``'s ``sensor.silent`` alert (its last reading is ``sensor.last_ts``)."""
    return _open(
        session,
        sensor,
        allowed,
        kind=SILENT,
        temp_c=None,
        started_at=sensor.last_ts,
        raised_at=utcnow(),
    )


def clear_silent(session: Session, sensor: Any, *, ts: datetime, temp_c: float) -> None:
    """Clear ``sensor``'s open ``sensor.silent`` alert: a reading (at ``ts``) came back."""
    _close(session, sensor, sensor.silent_alert_id, kind=SILENT, ts=ts, temp_c=temp_c)


def _open(
    session: Session,
    sensor: Any,
    allowed: TempRange,
    *,
    kind: str,
    temp_c: float | None,
    started_at: datetime,
    raised_at: datetime,
) -> int:
    """An open alert of ``kind`` and its ``alert.raised`` event; returns its id."""
    alert = Alert(
        sensor_id=sensor.id,
        warehouse_code=sensor.warehouse_code,
        room=sensor.room,
        status="open",
        kind=kind,
        min_temp_c=allowed.low,
        max_temp_c=allowed.high,
        temp_c=temp_c,
        started_at=started_at,
        raised_at=raised_at,
    )
    session.add(alert)
    session.flush()
    outbox.record(
        session,
        AlertRaised(
            alert_id=alert.id,
            sensor=sensor.id,
            warehouse=sensor.warehouse_code,
            room=sensor.room,
            min_temp_c=allowed.low,
            max_temp_c=allowed.high,
            temp_c=temp_c,
            started_at=started_at.isoformat(),
            kind=kind,
        ),
    )
    return alert.id


def _close(
    session: Session, sensor: Any, alert_id: int, *, kind: str, ts: datetime, temp_c: float
) -> None:
    """Clear the alert (once) at reading time ``ts`` with its ``alert.cleared`` event."""
    alert = session.get(Alert, alert_id)
    if alert is None or alert.status == "cleared":
        return
    alert.status = "cleared"
    alert.cleared_at = ts
    session.flush()
    outbox.record(
        session,
        AlertCleared(
            alert_id=alert_id,
            sensor=sensor.id,
            warehouse=sensor.warehouse_code,
            room=sensor.room,
            temp_c=temp_c,
            cleared_at=ts.isoformat(),
            kind=kind,
        ),
    )


def list_alerts(
    session: Session,
    *,
    status: str | None = None,
    warehouses: Iterable[str] | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[Alert]:
    """Alerts, newest first, optionally of one status and of some warehouses only; keyset-paged
    by ``before_id`` (the last id of the previous page)."""
    query = select(Alert).order_by(Alert.id.desc()).limit(limit)
    if status is not None:
        query = query.where(Alert.status == status)
    if warehouses is not None:
        query = query.where(Alert.warehouse_code.in_(sorted(warehouses)))
    if before_id is not None:
        query = query.where(Alert.id < before_id)
    return list(session.scalars(query))


def count_alerts(
    session: Session, *, status: str | None = None, warehouses: Iterable[str] | None = None
) -> int:
    """How many alerts there are, optionally of one status and of some warehouses only."""
    query = select(func.count()).select_from(Alert)
    if status is not None:
        query = query.where(Alert.status == status)
    if warehouses is not None:
        query = query.where(Alert.warehouse_code.in_(sorted(warehouses)))
    return int(session.scalar(query) or 0)


def acknowledge(session: Session, *, alert_id: int, actor_id: str) -> Alert:
    """Mark an alert as seen by a manager; acknowledging again changes nothing."""
    alert = session.get(Alert, alert_id, with_for_update=True)
    if alert is None:
        raise UnknownAlert(f"no alert with id {alert_id}")
    if alert.acknowledged_at is None:
        alert.acknowledged_at = utcnow()
        alert.acknowledged_by = actor_id
        if alert.status == "open":
            alert.status = "acknowledged"
        session.flush()
    return alert
