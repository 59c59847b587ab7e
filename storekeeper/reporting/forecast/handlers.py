"""Running the forecast: at once (``storekeeper forecast run``) or as a periodic durable job.

The background leader only *queues* the job (``reporting.forecast``), keyed by its time slot so
that a restart or a second leader never queues it twice; a job runner (an embedded job thread
or a Celery worker) does the work, so the leader's outbox relay never waits on a forecast.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from storekeeper.config import Settings
from storekeeper.db import Database, utcnow
from storekeeper.reporting.forecast import service
from storekeeper.reporting.forecast.engines import Done, Engine, engine_for
from storekeeper.reporting.forecast.source import DAILY_DEMAND, DemandSource
from storekeeper.tasks import queue
from storekeeper.tasks.registry import Registry

log = logging.getLogger(__name__)

RUN_FORECAST = "reporting.forecast"


def register(registry: Registry, *, settings: Settings) -> None:
    """Add the forecast job and the leader's schedule for it."""
    registry.job(RUN_FORECAST, forecast_job)
    # Checked every minute; each period of ``forecast_every_s`` queues one job (keyed).
    registry.every("reporting.schedule_forecast", min(60.0, settings.forecast_every_s), Schedule())


class Schedule:
    """The leader's periodic check: queue the forecast job for the start of the next period,
    once per period. The job's key makes that true across restarts and leaders; remembering
    the period queued here spares the database a write transaction on every check."""

    def __init__(self) -> None:
        self._queued: int | None = None

    def __call__(self, *, db: Database, settings: Settings) -> None:
        """Queue the next period's job unless this process already did."""
        every = settings.forecast_every_s
        now = time.time()
        period = int(now // every) + 1
        if period == self._queued:
            return
        with db.transaction() as session:
            queue.enqueue(
                session,
                RUN_FORECAST,
                {},
                key=f"{RUN_FORECAST}:{int(every)}:{period}",
                max_attempts=settings.job_max_attempts,
                delay_s=period * every - now,
            )
        self._queued = period


def forecast_job(args: dict[str, Any], *, db: Database, settings: Settings) -> None:
    """The periodic job: a run with the configured engine and source."""
    summary = run_forecast(db, settings=settings)
    log.info("forecast: %d series on %s in %.1f s", summary.series, summary.engine, summary.seconds)


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What a run did."""

    series: int
    since: date
    until: date
    engine: str
    seconds: float
    methods: Counter[str] = field(default_factory=Counter)


def run_forecast(
    db: Database,
    *,
    settings: Settings,
    source: DemandSource = DAILY_DEMAND,
    engine: Engine | None = None,
    today: date | None = None,
    started: Callable[[int], None] = lambda total: None,
    done: Done = lambda n: None,
) -> RunSummary:
    """Read daily demand up to yesterday (UTC), fit every series, replace the reorder points.

    Reads in one short transaction, fits with no database connection held (a cluster may take
    a while), writes in another; ``started`` hears the number of series before the fitting.
    """
    begun = time.perf_counter()
    until = (today or utcnow().date()) - timedelta(days=1)
    since = until - timedelta(days=settings.forecast_history_days - 1)
    with db.reading() as session:
        demand = source(session, since=since, until=until)
    series = service.build_series(demand, since=since, until=until)
    del demand
    started(len(series.keys))
    own = engine is None
    engine = engine or engine_for(settings.compute_url, processes=settings.forecast_processes)
    try:
        results = service.compute(
            series,
            engine=engine,
            policy=service.Policy.from_settings(settings),
            block_series=settings.forecast_block_series,
            done=done,
        )
    finally:
        if own:
            engine.close()
    with db.transaction() as session:
        service.replace_reorder_points(session, results=results, computed_at=utcnow())
    return RunSummary(
        series=len(results),
        since=since,
        until=until,
        engine=engine.name,
        seconds=time.perf_counter() - begun,
        methods=Counter(result.method for result in results),
    )
