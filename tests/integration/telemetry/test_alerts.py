"""Alerts from excursions: raised once after the grace by reading time, cleared when back in
range, written with their outbox events; ranges narrowed by the products stored in the room."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import Container
from storekeeper.catalog import service as catalog_service
from storekeeper.errors import NotFound
from storekeeper.events.models import OutboxEvent
from storekeeper.inventory import ledger as inventory_ledger
from storekeeper.observability import metrics
from storekeeper.telemetry import alerts, service
from storekeeper.telemetry.models import Alert
from tests.integration.telemetry.support import add_sensors, device, reading, staff

T0 = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)


def _send(container: Container, *points: tuple[float, float], sensor: str = "s-1") -> None:
    """Readings at T0 + seconds with temperatures."""
    container.ingest(
        device(),
        [reading(sensor, T0 + timedelta(seconds=s), t) for s, t in points],
        transport="mqtt",
    )


def _alerts(container: Container) -> list[Alert]:
    with container.db.reading() as session:
        return alerts.list_alerts(session)


def _events(container: Container, kind: str) -> list[dict[str, Any]]:
    with container.db.reading() as session:
        rows = session.scalars(
            select(OutboxEvent).where(OutboxEvent.type == kind).order_by(OutboxEvent.id)
        )
        return [row.payload for row in rows]


@pytest.fixture
def grace_60(container: Container) -> Container:
    container.settings.alert_grace_s = 60
    add_sensors(container, "s-1", min_temp_c=2.0, max_temp_c=8.0)
    return container


def test_an_excursion_raises_exactly_one_alert_after_the_grace_and_clears(
    grace_60: Container,
) -> None:
    container = grace_60
    raised_before = metrics.ALERTS.labels("raised")._value.get()

    _send(container, (0, 5.0), (10, 9.0), (40, 9.5), (70, 8.5))  # 60 s out: not longer yet
    assert _alerts(container) == []
    _send(container, (71, 10.0))  # 61 s out of range, in a later batch
    _send(container, (100, 11.0), (130, 12.0))  # still out: no second alert

    (alert,) = _alerts(container)
    assert (alert.status, alert.sensor_id, alert.temp_c) == ("open", "s-1", 10.0)
    assert alert.started_at == T0 + timedelta(seconds=10)
    assert _events(container, "alert.raised") == [
        {
            "alert_id": alert.id,
            "sensor": "s-1",
            "warehouse": "BER",
            "room": "cold-1",
            "min_temp_c": 2.0,
            "max_temp_c": 8.0,
            "temp_c": 10.0,
            "started_at": (T0 + timedelta(seconds=10)).isoformat(),
            "kind": "temperature",
        }
    ]
    assert metrics.ALERTS.labels("raised")._value.get() == raised_before + 1

    _send(container, (160, 7.9))
    (alert,) = _alerts(container)
    assert alert.status == "cleared"
    assert alert.cleared_at == T0 + timedelta(seconds=160)
    (cleared,) = _events(container, "alert.cleared")
    assert cleared["alert_id"] == alert.id

    _send(container, (200, 20.0), (250, 20.0), (255, 5.0))  # shorter than the grace
    assert len(_alerts(container)) == 1


def test_late_readings_do_not_reopen_or_close_an_excursion(grace_60: Container) -> None:
    container = grace_60
    _send(container, (0, 10.0), (100, 10.0))
    _send(container, (50, 5.0))  # arrives late: in range, but older than what was evaluated
    (alert,) = _alerts(container)
    assert alert.status == "open"


def test_one_batch_can_raise_and_clear(grace_60: Container) -> None:
    container = grace_60
    _send(container, (120, 5.0), (0, 9.0), (61, 9.0))  # unordered within the batch
    (alert,) = _alerts(container)
    assert alert.status == "cleared"
    assert len(_events(container, "alert.raised")) == len(_events(container, "alert.cleared")) == 1


def test_an_alert_is_raised_and_cleared_at_reading_time_in_that_order(
    grace_60: Container,
) -> None:
    container = grace_60
    _send(container, (0, 9.0), (61, 9.0), (120, 5.0))  # an hour-old backlog, one batch
    (alert,) = _alerts(container)
    assert alert.started_at <= alert.raised_at <= alert.cleared_at  # type: ignore[operator]
    assert alert.raised_at == T0 + timedelta(seconds=61)
    assert alert.cleared_at == T0 + timedelta(seconds=120)


def test_products_in_stock_narrow_the_rooms_range(grace_60: Container) -> None:
    container = grace_60
    with container.db.transaction() as session:
        catalog_service.create(
            session,
            data={
                "sku": "ICE",
                "name": "Ice cream",
                "price_cents": 300,
                "currency": "EUR",
                "min_temp_c": None,
                "max_temp_c": 4.0,
            },
        )
        inventory_ledger.record_movement(
            session, sku="ICE", warehouse="BER", delta=5, reason="receipt"
        )
    with container.db.reading() as session:
        (view,) = service.list_sensors(session)
    assert (view.effective.low, view.effective.high) == (2.0, 4.0)

    _send(container, (0, 6.0), (61, 6.0))  # within the room's 2..8, above the product's 4

    (alert,) = _alerts(container)
    assert (alert.min_temp_c, alert.max_temp_c) == (2.0, 4.0)


def test_products_that_cannot_be_kept_in_the_room_leave_its_range_alone(
    grace_60: Container,
) -> None:
    # One warehouse, three rooms' worth of goods: frozen, chilled and dry. Stock is known per
    # warehouse, so the chiller's sensor must not take the freezer's or the dry store's range.
    container = grace_60
    goods = {"PEAS": (-25.0, -18.0), "YOGHURT": (1.0, 6.0), "RICE": (10.0, 25.0)}
    with container.db.transaction() as session:
        for sku, (low, high) in goods.items():
            catalog_service.create(
                session,
                data={
                    "sku": sku,
                    "name": sku.title(),
                    "price_cents": 100,
                    "currency": "EUR",
                    "min_temp_c": low,
                    "max_temp_c": high,
                },
            )
            inventory_ledger.record_movement(
                session, sku=sku, warehouse="BER", delta=5, reason="receipt"
            )
    with container.db.reading() as session:
        (view,) = service.list_sensors(session)
    assert (view.effective.low, view.effective.high) == (2.0, 6.0)  # room 2..8, yoghurt 1..6

    _send(container, (0, 5.0), (61, 5.0), (122, 5.0))  # a chiller at 5 °C is fine

    assert _alerts(container) == []


def test_acknowledging_is_idempotent_and_listing_filters(grace_60: Container) -> None:
    container = grace_60
    add_sensors(container, "ham-1", warehouse="HAM")
    _send(container, (0, 9.0), (61, 9.0))
    container.ingest(
        device("HAM"),
        [reading("ham-1", T0, 20.0), reading("ham-1", T0 + timedelta(seconds=90), 20.0)],
        transport="tcp",
    )
    ber = next(a for a in _alerts(container) if a.sensor_id == "s-1")
    who = staff(Role.MANAGER)

    with container.db.transaction() as session:
        first = alerts.acknowledge(session, alert_id=ber.id, actor_id=str(who.user_id))
        first_at = first.acknowledged_at
    with container.db.transaction() as session:
        again = alerts.acknowledge(session, alert_id=ber.id, actor_id="someone-else")
        assert (again.status, again.acknowledged_at, again.acknowledged_by) == (
            "acknowledged",
            first_at,
            str(who.user_id),
        )
    with container.db.reading() as session:
        assert [a.sensor_id for a in alerts.list_alerts(session, status="acknowledged")] == ["s-1"]
        assert [a.sensor_id for a in alerts.list_alerts(session, status="open")] == ["ham-1"]
        assert [a.sensor_id for a in alerts.list_alerts(session, warehouses=["HAM"])] == ["ham-1"]
    with container.db.transaction() as session, pytest.raises(NotFound):
        alerts.acknowledge(session, alert_id=ber.id + 1000, actor_id="x")


def test_a_batch_with_many_readings_out_of_range_raises_one_alert(grace_60: Container) -> None:
    container = grace_60
    points = [(s, 9.0 + s / 100) for s in range(0, 300, 10)]
    _send(container, *points, *points)  # each reading twice in the same batch
    _send(container, *points)  # and again in the next

    (alert,) = _alerts(container)
    assert (alert.status, alert.temp_c, alert.raised_at) == (
        "open",
        9.7,
        T0 + timedelta(seconds=70),
    )
    assert len(_events(container, "alert.raised")) == 1
