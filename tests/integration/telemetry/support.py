"""Helpers for the telemetry tests: a warehouse with sensors, callers, readings."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from storekeeper.accounts.domain import Principal, Role
from storekeeper.bootstrap import Container
from storekeeper.inventory import warehouses as inventory_warehouses
from storekeeper.telemetry import service
from storekeeper.telemetry.readings import ReadingIn


def add_sensors(
    container: Container,
    *sensor_ids: str,
    warehouse: str = "BER",
    room: str = "cold-1",
    min_temp_c: float | None = 2.0,
    max_temp_c: float | None = 8.0,
) -> None:
    """Create the warehouse if needed and the sensors in one of its rooms."""
    with container.db.transaction() as session:
        if not inventory_warehouses.has_warehouse(session, code=warehouse):
            inventory_warehouses.create_warehouse(
                session, code=warehouse, name=warehouse, lat=52.5, lon=13.4
            )
        for sensor_id in sensor_ids:
            service.create_sensor(
                session,
                id=sensor_id,
                warehouse=warehouse,
                room=room,
                min_temp_c=min_temp_c,
                max_temp_c=max_temp_c,
            )


def device(warehouse: str = "BER") -> Principal:
    """A device principal bound to ``warehouse``."""
    return Principal(user_id=uuid.uuid4(), role=Role.DEVICE, scope=f"warehouse:{warehouse}")


def staff(role: Role = Role.MANAGER) -> Principal:
    """A manager (or another role)."""
    return Principal(user_id=uuid.uuid4(), role=role)


def minute_ago(minutes: float = 1.0) -> datetime:
    """A whole-second UTC moment ``minutes`` ago."""
    return (datetime.now(UTC) - timedelta(minutes=minutes)).replace(microsecond=0)


def reading(sensor: str, ts: datetime, temp_c: float, humidity: float | None = None) -> ReadingIn:
    """A reading."""
    return ReadingIn(sensor=sensor, ts=ts, temp_c=temp_c, humidity=humidity)
