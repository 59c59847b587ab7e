"""Concurrent batches for the same sensors, overlapping each other: every reading is stored
once, aggregates and counters agree with the distinct readings, and no batch fails."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import func, select

from storekeeper.bootstrap import Container
from storekeeper.telemetry import service
from storekeeper.telemetry.models import MinuteAggregate, Reading
from storekeeper.telemetry.readings import ReadingIn, Verdict
from tests.integration.telemetry.support import add_sensors, device, minute_ago, reading

SENSORS = [f"s-{i}" for i in range(20)]


def test_overlapping_concurrent_batches_store_each_reading_once(container: Container) -> None:
    add_sensors(container, *SENSORS)
    base = minute_ago(60)

    def batch(worker: int, round_: int) -> list[ReadingIn]:
        # Workers 2k and 2k+1 send the same timestamps, in opposite sensor order.
        step = (worker // 2) * 100 + round_
        at = base + timedelta(seconds=step)
        order = SENSORS if worker % 2 == 0 else list(reversed(SENSORS))
        return [reading(s, at, 4.0 + step % 3) for s in order]

    def work(worker: int) -> list[Verdict]:
        verdicts: list[Verdict] = []
        for round_ in range(10):
            verdicts += container.ingest(device(), batch(worker, round_), transport="http")
        return verdicts

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = [v for verdicts in pool.map(work, range(4)) for v in verdicts]

    distinct = 2 * 10 * len(SENSORS)  # two timestamp series, each sent twice
    assert all(v.stored for v in results)
    assert sum(v.reason is None for v in results) == distinct
    assert sum(v.reason == "duplicate" for v in results) == distinct
    with container.db.reading() as session:
        assert session.scalar(select(func.count()).select_from(Reading)) == distinct
        assert session.scalar(select(func.sum(MinuteAggregate.count))) == distinct
        views = service.list_sensors(session)
    assert {v.sensor.id: v.counts for v in views} == {
        s: {"stored": 20, "duplicate": 20} for s in SENSORS
    }
