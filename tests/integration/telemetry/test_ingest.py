"""Ingestion through ``telemetry.service.ingest``: what is stored, what is refused and why,
duplicates, the caller's scope, and the counters (metrics and per sensor)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import func, select

from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import Container
from storekeeper.observability import metrics
from storekeeper.telemetry import service
from storekeeper.telemetry.models import MinuteAggregate, Reading
from storekeeper.telemetry.readings import Verdict
from tests.integration.telemetry.support import add_sensors, device, minute_ago, reading, staff


def _stored_count(container: Container) -> int:
    with container.db.reading() as session:
        return int(session.scalar(select(func.count()).select_from(Reading)) or 0)


def _metric(transport: str, outcome: str, reason: str) -> float:
    value = metrics.TELEMETRY_READINGS.labels(transport, outcome, reason)._value.get()
    return float(value)


def test_readings_are_accepted_or_rejected_with_a_reason(container: Container) -> None:
    add_sensors(container, "s-1")
    now = datetime.now(UTC)
    old = now - timedelta(days=container.settings.telemetry_raw_retention_days, minutes=1)
    batch = [
        reading("s-1", minute_ago(3), 4.5, 60.0),
        reading("nope", minute_ago(3), 4.5),
        reading("s-1", minute_ago(2), math.nan),
        reading("s-1", minute_ago(2), math.inf),
        reading("s-1", minute_ago(2), 4.0, math.nan),
        reading("s-1", minute_ago(2), 71.0),
        reading("s-1", minute_ago(2), -90.5),
        reading("s-1", minute_ago(2), 4.0, 100.5),
        reading("s-1", minute_ago(2), 4.0, -1.0),
        reading("s-1", now + timedelta(minutes=6), 4.0),
        reading("s-1", old, 4.0),
        reading("s-1", minute_ago(1).replace(tzinfo=None), 4.0),
        reading("s-1", now + timedelta(minutes=4), -90.0, 0.0),
    ]
    before = _metric("mqtt", "rejected", "future_timestamp")

    verdicts = container.ingest(device(), batch, transport="mqtt")

    assert verdicts == [
        Verdict(stored=True),
        Verdict(stored=False, reason="unknown_sensor"),
        Verdict(stored=False, reason="not_finite"),
        Verdict(stored=False, reason="not_finite"),
        Verdict(stored=False, reason="not_finite"),
        Verdict(stored=False, reason="impossible_temperature"),
        Verdict(stored=False, reason="impossible_temperature"),
        Verdict(stored=False, reason="impossible_humidity"),
        Verdict(stored=False, reason="impossible_humidity"),
        Verdict(stored=False, reason="future_timestamp"),
        Verdict(stored=False, reason="too_old"),
        Verdict(stored=False, reason="naive_timestamp"),
        Verdict(stored=True),  # the limits themselves are possible; 4 minutes ahead is allowed
    ]
    assert _stored_count(container) == 2
    assert _metric("mqtt", "rejected", "future_timestamp") == before + 1
    with container.db.reading() as session:
        (view,) = service.list_sensors(session)
    assert view.counts == {
        "stored": 2,
        "not_finite": 3,
        "impossible_temperature": 2,
        "impossible_humidity": 2,
        "future_timestamp": 1,
        "too_old": 1,
        "naive_timestamp": 1,
    }


def test_a_reading_sent_twice_is_stored_once_and_counted_once(container: Container) -> None:
    add_sensors(container, "s-1")
    ts = minute_ago(2)
    first = container.ingest(
        device(), [reading("s-1", ts, 5.0), reading("s-1", ts, 5.0)], transport="tcp"
    )
    again = container.ingest(
        device(),
        # the same instant written in another zone is the same reading
        [reading("s-1", ts.astimezone(timezone(timedelta(hours=1))), 5.0)],
        transport="tcp",
    )

    assert first == [Verdict(stored=True), Verdict(stored=True, reason="duplicate")]
    assert again == [Verdict(stored=True, reason="duplicate")]
    assert _stored_count(container) == 1
    with container.db.reading() as session:
        (minute,) = session.scalars(select(MinuteAggregate)).all()
        (view,) = service.list_sensors(session)
    assert (minute.count, minute.temp_sum) == (1, 5.0)
    assert view.counts == {"stored": 1, "duplicate": 2}


def test_a_device_sends_only_for_its_own_warehouse(container: Container) -> None:
    add_sensors(container, "ber-1", warehouse="BER")
    add_sensors(container, "ham-1", warehouse="HAM")
    ts = minute_ago()

    verdicts = container.ingest(
        device("HAM"),
        [reading("ber-1", ts, 4.0), reading("ham-1", ts, 4.0)],
        transport="mqtt",
    )

    assert verdicts == [Verdict(stored=False, reason="not_allowed"), Verdict(stored=True)]
    assert _stored_count(container) == 1


def test_staff_send_over_http_only_and_other_roles_never(container: Container) -> None:
    add_sensors(container, "s-1")
    ts = minute_ago()

    assert container.ingest(staff(), [reading("s-1", ts, 4.0)], transport="tcp") == [
        Verdict(stored=False, reason="not_allowed")
    ]
    for role in (Role.CLERK, Role.CUSTOMER):
        assert container.ingest(staff(role), [reading("s-1", ts, 4.0)], transport="http") == [
            Verdict(stored=False, reason="not_allowed")
        ]
    assert container.ingest(staff(Role.ADMIN), [reading("s-1", ts, 4.0)], transport="http") == [
        Verdict(stored=True)
    ]


def test_an_empty_batch_does_nothing(container: Container) -> None:
    assert container.ingest(device(), [], transport="http") == []


def test_repeats_inside_a_batch_and_across_batches_are_stored_once(container: Container) -> None:
    """One statement per table per batch must still tell each reading's fate apart, and write
    timestamps that compare like SQLAlchemy's own (microseconds, other zones)."""
    add_sensors(container, "s-1", "s-2", "s-3")
    t1 = minute_ago(3).replace(microsecond=250_001)
    t2 = t1 + timedelta(seconds=30)
    plus_one = timezone(timedelta(hours=1))
    first = container.ingest(
        device(),
        [
            reading("s-1", t1, 4.0),
            reading("s-2", t1, 5.0),
            reading("s-1", t1, 9.0),  # the same reading again, another value: not stored
            reading("s-3", t1.astimezone(plus_one), 6.0),
        ],
        transport="http",
    )
    second = container.ingest(
        device(),
        [
            reading("s-1", t1, 4.0),
            reading("s-2", t2, 7.0),
            reading("s-3", t1, 6.0),  # stored first in another zone
            reading("s-2", t2.astimezone(plus_one), 7.0),
        ],
        transport="http",
    )

    stored, duplicate = Verdict(stored=True), Verdict(stored=True, reason="duplicate")
    assert first == [stored, stored, duplicate, stored]
    assert second == [duplicate, stored, duplicate, duplicate]
    assert _stored_count(container) == 4
    with container.db.reading() as session:
        aggregates = {
            m.sensor_id: (m.count, m.temp_sum, m.temp_min, m.temp_max)
            for m in session.scalars(select(MinuteAggregate).order_by(MinuteAggregate.minute))
        }
        views = {v.sensor.id: v for v in service.list_sensors(session)}
        kept = container.telemetry_store.raw(
            session, sensor="s-3", start=t1, end=t1 + timedelta(microseconds=1)
        )
    assert aggregates["s-1"] == (1, 4.0, 4.0, 4.0)
    assert aggregates["s-3"] == (1, 6.0, 6.0, 6.0)
    assert kept == 1
    assert views["s-1"].counts == {"stored": 1, "duplicate": 2}
    assert views["s-2"].counts == {"stored": 2, "duplicate": 1}
    assert views["s-3"].counts == {"stored": 1, "duplicate": 1}
    assert views["s-2"].sensor.last_ts == t2
    assert views["s-3"].sensor.last_ts == t1
