"""Silent sensors: a monitored sensor that stops reporting raises a ``sensor.silent`` alert.

A cold room whose sensor died looks, on every page, like a cold room in range. The sweeper
(``handlers``) finds sensors whose newest reading is older than ``STOREKEEPER_SENSOR_SILENT_S``
and that have a range to keep (their own or their products'); ingest clears the alert when
readings return (``service``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from storekeeper.telemetry import domain
from storekeeper.telemetry.alerts import raise_silent
from storekeeper.telemetry.domain import TempRange
from storekeeper.telemetry.models import Sensor
from storekeeper.telemetry.service import product_ranges


def raise_silent_alerts(session: Session, *, now: datetime, silent_after: timedelta) -> int:
    """Raise ``sensor.silent`` for each monitored sensor quiet since before ``now -
    silent_after`` that has none open; returns how many were raised. Sensors that never
    reported are not silent: they are not installed yet."""
    query = (
        select(Sensor)
        .where(Sensor.last_ts < now - silent_after, Sensor.silent_alert_id.is_(None))
        .order_by(Sensor.id)
        # Locked as ingest locks them: a reading arriving now either clears first or waits.
        .with_for_update()
    )
    ranges: dict[str, list[TempRange]] = {}
    raised = 0
    for sensor in session.scalars(query):
        if sensor.warehouse_code not in ranges:
            ranges[sensor.warehouse_code] = product_ranges(session, warehouse=sensor.warehouse_code)
        room = TempRange(sensor.min_temp_c, sensor.max_temp_c)
        allowed = domain.effective_range(room, ranges[sensor.warehouse_code])
        if allowed.low is None and allowed.high is None:
            continue  # nothing to keep cold or warm here: its silence harms nothing
        sensor.silent_alert_id = raise_silent(session, sensor, allowed)
        raised += 1
    return raised
