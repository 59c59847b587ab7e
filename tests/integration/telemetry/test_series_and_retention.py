"""Series from the minute aggregates, compared with a plain computation over the raw values;
the retention sweeper forgets old raw readings and keeps the aggregates."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from storekeeper.bootstrap import Container
from storekeeper.telemetry import service
from storekeeper.telemetry.models import MinuteAggregate, Reading
from storekeeper.telemetry.readings import Verdict
from tests.integration.telemetry.support import add_sensors, device, reading


def _synthetic(start: datetime, days: int, seed: int) -> list[tuple[datetime, float]]:
    """Irregular readings over ``days``: bursts within a minute, gaps of hours."""
    rng = random.Random(seed)
    out: list[tuple[datetime, float]] = []
    moment = start
    end = start + timedelta(days=days)
    while moment < end:
        out.append((moment, round(rng.uniform(-25.0, 12.0), 2)))
        moment += timedelta(seconds=rng.choice([7, 13, 40, 61, 600, 3600, 4 * 3600]))
    return out


def _expected(
    values: list[tuple[datetime, float]], start: datetime, bucket: timedelta
) -> list[tuple[datetime, float, float, float, int]]:
    groups: dict[int, list[float]] = defaultdict(list)
    for ts, temp in values:
        groups[int((ts - start) / bucket)].append(temp)
    return [
        (start + index * bucket, min(t), max(t), sum(t) / len(t), len(t))
        for index, t in sorted(groups.items())
    ]


@pytest.mark.parametrize("bucket_minutes", [60, 6 * 60, 1440])
def test_series_over_months_match_a_plain_computation(
    container: Container, bucket_minutes: int
) -> None:
    add_sensors(container, "s-1", "s-2")
    container.settings.telemetry_raw_retention_days = 120
    start = (datetime.now(UTC) - timedelta(days=100)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    values = _synthetic(start, days=95, seed=bucket_minutes)
    for offset in range(0, len(values), 1000):
        chunk = values[offset : offset + 1000]
        verdicts = container.ingest(
            device(),
            [reading("s-1", ts, temp) for ts, temp in chunk]
            + [reading("s-2", ts, 0.0) for ts, _ in chunk[:10]],
            transport="http",
        )
        assert all(v == Verdict(stored=True) for v in verdicts)

    points = service.series(
        db=container.db,
        store=container.telemetry_store,
        sensor="s-1",
        start=start,
        end=start + timedelta(days=95),
        bucket_minutes=bucket_minutes,
    )

    expected = _expected(values, start, timedelta(minutes=bucket_minutes))
    assert len(points) == len(expected) > 50
    for point, (at, low, high, avg, count) in zip(points, expected, strict=True):
        assert (point.start, point.min, point.max, point.count) == (at, low, high, count)
        assert point.avg == pytest.approx(avg, abs=1e-9)


def test_a_series_range_cuts_at_minute_boundaries(container: Container) -> None:
    add_sensors(container, "s-1")
    base = (datetime.now(UTC) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    container.ingest(
        device(),
        [reading("s-1", base + timedelta(minutes=m, seconds=30), float(m)) for m in range(10)],
        transport="http",
    )

    points = service.series(
        db=container.db,
        store=container.telemetry_store,
        sensor="s-1",
        start=base + timedelta(minutes=2),
        end=base + timedelta(minutes=5),
        bucket_minutes=1,
    )

    assert [(p.start.minute, p.min, p.count) for p in points] == [
        (2, 2.0, 1),
        (3, 3.0, 1),
        (4, 4.0, 1),
    ]


def test_retention_forgets_old_raw_readings_and_keeps_the_aggregates(
    container: Container,
) -> None:
    add_sensors(container, "s-1")
    container.settings.telemetry_raw_retention_days = 30
    now = datetime.now(UTC).replace(microsecond=0)
    old = [reading("s-1", now - timedelta(days=20, minutes=m), 3.0) for m in range(5)]
    recent = [reading("s-1", now - timedelta(days=2, minutes=m), 4.0) for m in range(3)]
    container.ingest(device(), old + recent, transport="http")
    container.settings.telemetry_raw_retention_days = 7

    raw, minutes = service.sweep_retention(
        db=container.db, store=container.telemetry_store, settings=container.settings
    )

    assert (raw, minutes) == (5, 0)
    with container.db.reading() as session:
        kept = session.scalar(select(func.count()).select_from(Reading))
        aggregates = session.scalar(select(func.sum(MinuteAggregate.count)))
    assert (kept, aggregates) == (3, 8)
    points = service.series(
        db=container.db,
        store=container.telemetry_store,
        sensor="s-1",
        start=now - timedelta(days=21),
        end=now,
        bucket_minutes=1440,
    )
    assert sum(p.count for p in points) == 8

    container.settings.telemetry_minute_retention_days = 10
    assert service.sweep_retention(
        db=container.db, store=container.telemetry_store, settings=container.settings
    ) == (0, 5)
