"""What ``GET /metrics`` serves: this process's metrics (every worker's, in multiprocess mode)
plus gauges read from the database at scrape time.

Multiprocess mode: ``storekeeper serve --workers N`` sets ``PROMETHEUS_MULTIPROC_DIR`` before
any worker imports prometheus_client; each worker then writes its samples to files there and
whichever worker answers a scrape sums them all. Separate processes (other ``serve`` or
``worker`` commands, other hosts) share nothing and are scraped one by one.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from storekeeper.db import Database
from storekeeper.events import failures, relay
from storekeeper.observability import metrics
from storekeeper.ordering import service as ordering_service
from storekeeper.sync import exceptions as sync_exceptions
from storekeeper.tasks import queue

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
log = logging.getLogger(__name__)

# Families the database collector answers for, though metric objects of these names exist.
_FROM_DATABASE = frozenset({metrics.OUTBOX_LAG._name, metrics.JOBS_QUEUED._name})


def multiprocess_dir() -> Path | None:
    """The shared directory of multiprocess mode, or None in single-process mode."""
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def reset_multiprocess_dir(path: Path) -> None:
    """Create ``path`` empty: files of an earlier run would add their counts to this one's."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def mark_process_dead(pid: int) -> None:
    """Drop a finished worker's live gauges (``livesum``) in multiprocess mode; else nothing."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class _Without:
    """Another collector's families except those named in ``names``."""

    def __init__(self, source: Collector | CollectorRegistry, names: frozenset[str]) -> None:
        self._source, self._names = source, names

    def collect(self) -> Iterable[Metric]:
        return (family for family in self._source.collect() if family.name not in self._names)


class DatabaseCollector:
    """Gauges read from the database, cached ``ttl_s`` so that scrapes do not hammer it."""

    def __init__(self, db: Database, *, ttl_s: float = 5.0) -> None:
        """Read ``db`` at most once per ``ttl_s`` seconds."""
        self._db, self._ttl = db, ttl_s
        self._cached: tuple[float, list[Metric]] | None = None
        self._lock = threading.Lock()

    def collect(self) -> Iterable[Metric]:
        """The families, from the cache when fresh."""
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= self._ttl:
                self._cached = (now, self._read())
            return list(self._cached[1])

    def _read(self) -> list[Metric]:
        ok = GaugeMetricFamily(
            metrics.DATABASE_SCRAPE_OK.name, metrics.DATABASE_SCRAPE_OK.documentation
        )
        try:
            families = list(self._families())
        except Exception:  # a scrape must still answer, saying the database part failed
            log.warning("metrics: could not read gauges from the database", exc_info=True)
            ok.add_metric([], 0)
            return [ok]
        ok.add_metric([], 1)
        return [*families, ok]

    def _families(self) -> Iterator[Metric]:
        outbox = relay.status(self._db)
        yield _gauge(metrics.OUTBOX_LAG._name, metrics.OUTBOX_LAG._documentation, outbox.pending)
        yield _gauge(
            metrics.OUTBOX_LAG_SECONDS.name, metrics.OUTBOX_LAG_SECONDS.documentation, outbox.lag_s
        )
        jobs = queue.status(self._db)
        states = GaugeMetricFamily(
            metrics.JOBS.name, metrics.JOBS.documentation, labels=metrics.JOBS.labels
        )
        for state in ("queued", "running", "done", "failed", "discarded"):
            states.add_metric([state], jobs.counts.get(state, 0))
        yield states
        with self._db.reading() as session:
            connection = session.connection()
            by_name = queue.queued_by_name(connection).items()
            by_status = ordering_service.count_by_status(connection).items()
            open_exceptions = sync_exceptions.count_open(connection)
            delivery_failures = failures.open_by_consumer(connection)
        queued = GaugeMetricFamily(
            metrics.JOBS_QUEUED._name, metrics.JOBS_QUEUED._documentation, labels=["name"]
        )
        for name, count in by_name:
            queued.add_metric([name], count)
        yield queued
        orders = GaugeMetricFamily(
            metrics.ORDERS_BY_STATUS.name,
            metrics.ORDERS_BY_STATUS.documentation,
            labels=metrics.ORDERS_BY_STATUS.labels,
        )
        for status, count in by_status:
            orders.add_metric([status], count)
        yield orders
        for gauge, field in (
            (metrics.EVENTS_PARKED, "parked"),
            (metrics.EVENTS_RETRYING, "retrying"),
        ):
            family = GaugeMetricFamily(gauge.name, gauge.documentation, labels=gauge.labels)
            for consumer, counts in delivery_failures.items():
                family.add_metric([consumer], getattr(counts, field))
            yield family
        yield _gauge(
            metrics.SYNC_EXCEPTIONS_OPEN.name,
            metrics.SYNC_EXCEPTIONS_OPEN.documentation,
            open_exceptions,
        )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def build_registry(db: Database) -> CollectorRegistry:
    """The registry ``/metrics`` renders for a process whose database is ``db``."""
    registry = CollectorRegistry(auto_describe=False)
    source: Collector | CollectorRegistry = REGISTRY
    if multiprocess_dir() is not None:
        source = multiprocess.MultiProcessCollector(None)  # type: ignore[no-untyped-call]
    registry.register(_Without(source, _FROM_DATABASE))
    registry.register(DatabaseCollector(db))
    return registry


def serve_in_background(db: Database, *, host: str, port: int) -> None:
    """Serve ``/metrics`` of this process on ``host:port`` from a daemon thread.

    For ``storekeeper worker``, which has no HTTP server of its own: its job runs and event
    deliveries would otherwise never be scraped. No token check here: bind it to an internal
    address.
    """
    start_http_server(port, addr=host, registry=build_registry(db))


def render(registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition of ``registry``."""
    return generate_latest(registry)
