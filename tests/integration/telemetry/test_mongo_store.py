"""The MongoDB store against a real server: runs only when STOREKEEPER_TEST_MONGO_URL is set
(e.g. ``mongodb://127.0.0.1:27017/sk_test``); no MongoDB server exists on the CI machine."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from storekeeper.bootstrap import Container
from storekeeper.telemetry import service
from storekeeper.telemetry.readings import Verdict
from storekeeper.telemetry.store import StoredReading
from tests.integration.telemetry.support import add_sensors, device, reading

MONGO_URL = os.environ.get("STOREKEEPER_TEST_MONGO_URL", "")
pytestmark = pytest.mark.skipif(not MONGO_URL, reason="STOREKEEPER_TEST_MONGO_URL is not set")


@pytest.fixture
def mongo_container(container: Container) -> Iterator[Container]:
    """The container with a MongoDB store under collection names of this test's own."""
    from storekeeper.telemetry.mongo import MongoStore

    store = MongoStore(MONGO_URL, prefix=f"t{uuid.uuid4().hex[:12]}")
    container.telemetry_store = store
    yield container
    store.readings.drop()
    store.minutes.drop()


def test_readings_are_stored_once_and_aggregated(mongo_container: Container) -> None:
    container = mongo_container
    add_sensors(container, "s-1")
    base = (datetime.now(UTC) - timedelta(hours=2)).replace(second=0, microsecond=0)
    batch = [reading("s-1", base + timedelta(seconds=10 * i), float(i)) for i in range(12)]

    first = container.ingest(device(), batch, transport="http")
    again = container.ingest(device(), batch[:3], transport="http")

    assert first == [Verdict(stored=True)] * 12
    assert again == [Verdict(stored=True, reason="duplicate")] * 3
    points = service.series(
        db=container.db,
        store=container.telemetry_store,
        sensor="s-1",
        start=base,
        end=base + timedelta(minutes=2),
        bucket_minutes=1,
    )
    assert [(p.count, p.min, p.max, p.avg) for p in points] == [
        (6, 0.0, 5.0, 2.5),
        (6, 6.0, 11.0, 8.5),
    ]


def test_sweep_forgets_old_raw_readings_and_keeps_minutes(mongo_container: Container) -> None:
    container = mongo_container
    store = container.telemetry_store
    now = datetime.now(UTC)
    old = StoredReading("s-1", now - timedelta(days=10), 3.0, None, "http")
    new = StoredReading("s-1", now - timedelta(days=1), 4.0, None, "http")
    with container.db.transaction() as session:
        assert store.add(session, [old, new]) == {old.key, new.key}
        raw, minutes = store.sweep(session, raw_before=now - timedelta(days=7), minutes_before=0)
        assert (raw, minutes) == (1, 0)
        assert store.raw(session, sensor="s-1", start=now - timedelta(days=30), end=now) == 1
