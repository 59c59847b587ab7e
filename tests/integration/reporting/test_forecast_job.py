"""The periodic forecast: the leader queues one job per period, keyed, and the job runs the
forecast with the configured engine and source."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from storekeeper.bootstrap import Container
from storekeeper.catalog import service as catalog_service
from storekeeper.config import Settings
from storekeeper.db import as_aware
from storekeeper.inventory import warehouses
from storekeeper.reporting.forecast import handlers, service
from storekeeper.tasks.models import Job
from tests.forecast_shop import build_ledger


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Ten years of history: the test ledger (spring 2026) stays in the job's window."""
    return settings.model_copy(update={"forecast_history_days": 3660})


def _forecast_jobs(container: Container) -> list[Job]:
    with container.db.reading() as session:
        return list(session.scalars(select(Job).where(Job.name == handlers.RUN_FORECAST)))


def test_the_leader_queues_one_forecast_per_period_at_its_start(container: Container) -> None:
    schedule = next(p for p in container.periodic if p.name == "reporting.schedule_forecast")
    every = container.settings.forecast_every_s
    before = time.time()
    schedule.run()
    schedule.run()  # a second pass in the same period: no second job
    handlers.Schedule()(db=container.db, settings=container.settings)  # nor another leader's
    jobs = _forecast_jobs(container)
    assert len(jobs) == 1
    start = as_aware(jobs[0].run_after)
    assert start is not None
    next_period = (int(before // every) + 1) * every
    assert abs(start.timestamp() - next_period) < 1


def test_the_job_sets_reorder_points_from_the_ledger(container: Container) -> None:

    with container.db.transaction() as session:
        for code in ("BER", "HAM"):
            warehouses.create_warehouse(session, code=code, name=code, lat=52.5, lon=13.4)
        for sku in ("TEA", "MUG"):
            catalog_service.create(
                session, data={"sku": sku, "name": sku, "price_cents": 100, "currency": "EUR"}
            )
    build_ledger(container)
    job = container.jobs.get(handlers.RUN_FORECAST)
    assert job is not None
    job({})
    with container.db.reading() as session:
        points, _ = service.list_reorder_points(session)
    assert {(p.sku, p.warehouse) for p in points} == {("TEA", "BER"), ("MUG", "HAM")}
    assert all(p.lead_time_days == 7 and p.service_level == 0.95 for p in points)
