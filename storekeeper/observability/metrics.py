"""Every Prometheus metric Storekeeper exports, defined in one place so names stay consistent.

Contexts import the metric they update from here (``metrics.TELEMETRY_READINGS.labels(...).inc()``);
``/metrics`` serves them. Names follow Prometheus conventions: ``storekeeper_`` prefix, base units,
``_total`` for counters.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "storekeeper_http_requests_total",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "storekeeper_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ["route", "method"],
)
ORDERS = Counter("storekeeper_orders_total", "Orders reaching a status, by status.", ["status"])
RESERVATIONS = Counter(
    "storekeeper_reservations_total", "Stock reservations made, by outcome.", ["outcome"]
)
ORPHAN_RESERVATIONS = Counter(
    "storekeeper_orphan_reservations_released_total",
    "Remote reservations released because their order never committed.",
)
STOCK_MOVEMENTS = Counter(
    "storekeeper_stock_movements_total", "Stock movements recorded, by reason.", ["reason"]
)
SYNC_PUSHED = Counter(
    "storekeeper_sync_mutations_total", "Replica mutations pushed, by result status.", ["status"]
)
SYNC_PULLS = Counter("storekeeper_sync_pulls_total", "Replica pull pages served.")
SYNC_SNAPSHOTS = Counter(
    "storekeeper_sync_snapshots_total",
    "Sync snapshots served to fresh replicas, by source (built, cached).",
    ["source"],
)
SYNC_EXCEPTIONS = Counter(
    "storekeeper_sync_exceptions_total", "Offline sales flagged as exceptions."
)
PRUNED_ROWS = Counter(
    "storekeeper_pruned_rows_total", "Rows (or files) deleted by retention, by table.", ["table"]
)
OLDEST_RETAINED = Gauge(
    "storekeeper_oldest_retained_age_seconds",
    "Age of the oldest row kept in a pruned table, after the last pruning pass.",
    ["table"],
)
OUTBOX_LAG = Gauge(
    "storekeeper_outbox_lag_events",
    "Outbox events written but not yet relayed.",
    multiprocess_mode="max",
)
RELAYED_EVENTS = Counter("storekeeper_relayed_events_total", "Outbox events relayed.")
EVENT_DELIVERY_FAILURES = Counter(
    "storekeeper_event_delivery_failures_total",
    "Attempts of a consumer to apply an event that failed (each retry counts), by consumer.",
    ["consumer"],
)
JOBS_QUEUED = Gauge(
    "storekeeper_jobs_queued",
    "Jobs waiting to run, by job name.",
    ["name"],
    multiprocess_mode="max",
)
JOB_RUNS = Counter(
    "storekeeper_job_runs_total",
    "Job attempts finished, by job name and outcome.",
    ["name", "outcome"],
)
BREAKER_OPEN = Gauge(
    "storekeeper_payment_breaker_open",
    "1 while the payment gateway's circuit is open.",
    ["gateway"],
    multiprocess_mode="max",
)
TELEMETRY_READINGS = Counter(
    "storekeeper_telemetry_readings_total",
    "Sensor readings received, by transport (http, mqtt, tcp), outcome (stored, rejected) "
    "and reason (empty when stored).",
    ["transport", "outcome", "reason"],
)
ALERTS = Counter(
    "storekeeper_alerts_total",
    "Cold-chain alerts, by transition (raised, cleared).",
    ["transition"],
)
LIVE_CLIENTS = Gauge(
    "storekeeper_live_clients",
    "Connected live-update clients, by transport (sse, ws).",
    ["transport"],
    multiprocess_mode="livesum",
)
GRPC_CALLS = Counter(
    "storekeeper_grpc_calls_total",
    "gRPC calls answered, by method and status code.",
    ["method", "code"],
)


# --- Read from the database when scraped (storekeeper.observability.exposition) -----------------
# Not metric objects: the scraping process asks the database, so every process reports the same
# truth and nothing goes stale. OUTBOX_LAG and JOBS_QUEUED above are served the same way (their
# objects stay importable, but their in-process values are replaced at scrape time).


@dataclass(frozen=True, slots=True)
class DatabaseGauge:
    """A gauge computed from the database at scrape time."""

    name: str
    documentation: str
    labels: tuple[str, ...] = ()


OUTBOX_LAG_SECONDS = DatabaseGauge(
    "storekeeper_outbox_lag_seconds", "Age of the oldest outbox event not yet relayed."
)
JOBS = DatabaseGauge("storekeeper_jobs", "Background jobs in each state.", ("state",))
ORDERS_BY_STATUS = DatabaseGauge(
    "storekeeper_orders_by_status", "Orders currently in each status.", ("status",)
)
EVENTS_PARKED = DatabaseGauge(
    "storekeeper_events_parked",
    "Events parked for a consumer after their last retry, waiting for an operator "
    "(storekeeper events parked), by consumer.",
    ("consumer",),
)
EVENTS_RETRYING = DatabaseGauge(
    "storekeeper_events_retrying",
    "Events a consumer failed on and that are still being retried, by consumer.",
    ("consumer",),
)
SYNC_EXCEPTIONS_OPEN = DatabaseGauge(
    "storekeeper_sync_exceptions_open", "Sync exceptions waiting for a manager."
)
DATABASE_SCRAPE_OK = DatabaseGauge(
    "storekeeper_metrics_database_ok",
    "1 when the last read of the database gauges above succeeded, 0 when it failed.",
)
