"""W5 telemetry (HTTP part): readings stored per second through ``POST /api/v1/telemetry``.

200 sensors in BER, one device token bound to ``warehouse:BER`` (issued by ``POST /devices``).
``CLIENTS`` threads each keep one connection and post batches of 200 readings (one per sensor,
a timestamp unique per batch) for the slice; the figure is readings the server answered as
stored, per second of wall time.

Ceiling in the same run, in turns with the app (A B B A): the same kind of rows (sensor, ts,
JSON document, received_at) inserted into the same table (``telemetry_reading``) with one
``executemany`` in one transaction through the raw driver (sqlite3 / psycopg), ``CEILING_ROWS``
at a time. The app does more per reading (authentication, validation, duplicate detection with
RETURNING, minute aggregates, per-sensor counters and alert state): the ratio says how much.

The MQTT part (``bench/w5_mqtt.py``) takes the seeding, the ceiling slices
(``alternate_with_ceiling``) and the summary with its results document (``finish``) from here,
so both parts measure against the same floor and report alike.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from sqlalchemy import func, select

from bench import infra, report, schedule, seed
from bench.infra import BenchDatabase, Server
from bench.options import Options, environment
from bench.w3 import admin_token, device_token, serve_app
from storekeeper.telemetry import service as telemetry_service
from storekeeper.telemetry.models import Reading

SENSORS = 200
BATCH = 200
CLIENTS = 4
CEILING_ROWS = 50_000
GOAL = 0.2
"""Issue 18's goal for the HTTP part: stored readings/s >= 0.2 of the ceiling's rows/s."""
WAREHOUSE = "BER"
_API = "/api/v1"
_INSERT = "INSERT INTO telemetry_reading (sensor_id, ts, doc, received_at) VALUES ({})"


def sensor_id(index: int) -> str:
    """The id of the ``index``-th bench sensor."""
    return f"w5-{index:03d}"


@dataclass
class _Clock:
    """Hands out unique batch timestamps (1 ms apart) within the raw retention."""

    start: datetime = field(
        default_factory=lambda: (datetime.now(UTC) - timedelta(days=6)).replace(microsecond=0)
    )
    _next: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> datetime:
        with self._lock:
            self._next += 1
            return self.start + timedelta(milliseconds=self._next)


@dataclass
class _Tally:
    stored: int = 0
    rejected: int = 0
    failed_requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def readings_body(ts: datetime) -> bytes:
    stamp = ts.isoformat()
    return json.dumps(
        {
            "readings": [
                {
                    "sensor": sensor_id(i),
                    "ts": stamp,
                    "temp_c": 4.0 + (i % 10) / 10,
                    "humidity": 60.0,
                }
                for i in range(BATCH)
            ]
        }
    ).encode()


def _post_for(server: Server, token: str, clock: _Clock, seconds: float) -> _Tally:
    """``CLIENTS`` threads posting batches for ``seconds``; what the server answered."""
    tally = _Tally()
    deadline = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def client() -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
            while time.perf_counter() < deadline:
                response = http.post(f"{_API}/telemetry", content=readings_body(clock.take()))
                with tally.lock:
                    if response.status_code != 200:
                        tally.failed_requests += 1
                        continue
                    body = response.json()
                    tally.stored += body["stored"]
                    tally.rejected += body["rejected"]

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally


def _ceiling_rows(round_: int) -> list[tuple[str, str, str, str]]:
    """Rows like the app's, a day before the app's timestamps (no clash)."""
    base = datetime.now(UTC) - timedelta(days=7, hours=round_ + 1)
    received = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    doc = json.dumps({"temp_c": 4.5, "humidity": 60.0, "via": "http"})
    return [
        (
            sensor_id(n % SENSORS),
            (base + timedelta(milliseconds=n // SENSORS)).strftime("%Y-%m-%d %H:%M:%S.%f"),
            doc,
            received,
        )
        for n in range(CEILING_ROWS)
    ]


def _ceiling(db: BenchDatabase, rows: list[tuple[str, str, str, str]]) -> float:
    """Seconds to insert ``rows`` with one executemany in one transaction."""
    if db.backend == "sqlite":
        conn = sqlite3.connect(db.driver_target, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous=NORMAL")  # as the app's connections
            started = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(_INSERT.format("?, ?, ?, ?"), rows)
            conn.execute("COMMIT")
            return time.perf_counter() - started
        finally:
            conn.close()
    with psycopg.connect(db.driver_target) as pg:
        started = time.perf_counter()
        with pg.cursor() as cursor:
            cursor.executemany(
                _INSERT.format("%s, %s::timestamptz, %s::jsonb, %s::timestamptz"),
                [(s, f"{ts}+00", doc, f"{at}+00") for s, ts, doc, at in rows],
            )
        pg.commit()
        return time.perf_counter() - started


def ceiling_run(db: BenchDatabase, round_: int) -> dict[str, Any]:
    """One ceiling slice: ``CEILING_ROWS`` rows by one executemany transaction; its record."""
    rows = _ceiling_rows(round_)
    seconds = _ceiling(db, rows)
    return {
        "seconds": round(seconds, 3),
        "rows": len(rows),
        "rows_per_s": round(len(rows) / seconds, 1),
    }


def alternate_with_ceiling(
    db: BenchDatabase, app_slice: Callable[[int], None], rounds: int
) -> list[dict[str, Any]]:
    """``app_slice`` and ``ceiling_run`` in turns (A B B A); the ceiling's run records."""
    ceiling_runs: list[dict[str, Any]] = []

    def ceiling_slice(round_: int) -> None:
        ceiling_runs.append(ceiling_run(db, round_))

    schedule.alternate([app_slice, ceiling_slice], rounds)
    return ceiling_runs


def finish(
    backend: str,
    *,
    workload: str,
    name: str,
    app: tuple[str, str],
    clean_label: str,
    runs: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    rows: tuple[int, int, str],
    problems: list[str],
    setup: dict[str, Any],
    busy: float | None,
    goal: float | None = None,
) -> tuple[dict[str, Any], bool]:
    """Print a W5 part's summary; its results document and whether it was clean.

    ``app`` is the app's console label and what follows its readings/s in parentheses;
    ``runs`` are the app's (with ``stored`` and ``seconds``) and the ceiling's run records;
    ``rows`` are the rows ``telemetry_reading`` holds at the end, the readings the app stored
    and how it knows (``answered``, ``published``): together with the ceiling's rows they must
    add up to the rows held.
    """
    app_runs, ceiling_runs = runs
    held, app_rows, app_rows_were = rows
    expected = app_rows + CEILING_ROWS * len(ceiling_runs)
    if held != expected:
        problems.append(f"{held} rows in telemetry_reading, {expected} {app_rows_were} or inserted")
    app_rate = sum(r["stored"] for r in app_runs) / sum(r["seconds"] for r in app_runs)
    ceiling_rate = sum(r["rows"] for r in ceiling_runs) / sum(r["seconds"] for r in ceiling_runs)
    value = report.ratio(app_rate, ceiling_rate)
    label, detail = app
    report.line(label, f"{app_rate:9.0f} readings/s  ({detail})")
    report.line("ceiling (executemany)", f"{ceiling_rate:9.0f} rows/s  ({CEILING_ROWS} per txn)")
    report.line(
        "ratio app / ceiling",
        f"{value:.3f}"
        if goal is None
        else f"{value:.3f} (goal >= {goal:.2f}: {'met' if value >= goal else 'NOT met'})",
    )
    report.line(clean_label, "yes" if not problems else "NO")
    for problem in problems:
        print(f"  NOT CLEAN: {problem}", flush=True)
    document = {
        "workload": workload,
        "name": name,
        "backend": backend,
        "figures": {"readings_per_s": round(app_rate, 1)},
        "ceiling": {"rows_per_s": round(ceiling_rate, 1)},
        "ratio": round(value, 4),
        "ratio_meaning": "app readings/s / ceiling rows/s (higher is better)",
        "goal": goal,
        "goal_met": None if goal is None else value >= goal,
        "runs": {"app": app_runs, "ceiling": ceiling_runs},
        "clean": not problems,
        "problems": problems,
        "setup": setup,
        "environment": environment(busy),
    }
    return document, not problems


def seed_sensors(db: BenchDatabase) -> str:
    """Warehouses and the ``SENSORS`` sensors in BER; an admin token for issuing device tokens."""
    with infra.container_for(db) as container:
        seed.seed_warehouses(container.db)
        with container.db.transaction() as session:
            for i in range(SENSORS):
                telemetry_service.create_sensor(
                    session,
                    id=sensor_id(i),
                    warehouse=WAREHOUSE,
                    room=f"room-{i % 10}",
                    min_temp_c=-30.0,
                    max_temp_c=30.0,
                )
        return admin_token(container.db, container.signing_key)


def _stored_rows(db: BenchDatabase) -> int:
    with infra.container_for(db) as container, container.db.reading() as session:
        return int(session.scalar(select(func.count()).select_from(Reading)) or 0)


def run(backend: str, opts: Options) -> tuple[dict[str, Any], bool]:
    """Run W5 (HTTP) on ``backend``; returns the results document and whether it was clean."""
    report.heading(f"W5 telemetry over HTTP on {backend}")
    busy = schedule.background_busy()
    schedule.warn_if_busy(busy)
    problems: list[str] = []
    app_runs: list[dict[str, Any]] = []
    with infra.fresh_database(backend, "w5", opts.workdir) as db:
        admin = seed_sensors(db)
        with serve_app(db, opts, f"W5-{backend}-app") as server:
            token = device_token(server, admin, label="w5-sensors", scope=f"warehouse:{WAREHOUSE}")
            clock = _Clock()
            warm = _post_for(server, token, clock, opts.warmup_s) if opts.warmup_s else _Tally()
            answered_stored = warm.stored

            def app_slice(_: int) -> None:
                nonlocal answered_stored
                started = time.perf_counter()
                tally = _post_for(server, token, clock, opts.slice_s)
                seconds = time.perf_counter() - started
                answered_stored += tally.stored
                app_runs.append(
                    {
                        "seconds": round(seconds, 3),
                        "stored": tally.stored,
                        "rejected": tally.rejected,
                        "failed_requests": tally.failed_requests,
                        "readings_per_s": round(tally.stored / seconds, 1),
                    }
                )
                if tally.rejected or tally.failed_requests:
                    problems.append(
                        f"{tally.rejected} readings rejected, {tally.failed_requests} "
                        "requests failed"
                    )

            ceiling_runs = alternate_with_ceiling(db, app_slice, opts.rounds)
        held = _stored_rows(db)
    return finish(
        backend,
        workload="W5",
        name="telemetry-http",
        app=("app (POST /telemetry)", f"{BATCH} per request, {CLIENTS} clients"),
        clean_label="every answer stored",
        runs=(app_runs, ceiling_runs),
        rows=(held, answered_stored, "answered"),
        problems=problems,
        setup={
            "sensors": SENSORS,
            "batch": BATCH,
            "clients": CLIENTS,
            "workers": opts.workers,
            "slice_s": opts.slice_s,
            "rounds": opts.rounds,
            "token": "device token bound to warehouse:BER (POST /api/v1/devices)",
            "ceiling": f"{CEILING_ROWS} rows (sensor, ts, JSON document, received_at) into "
            "telemetry_reading with one executemany in one transaction through the raw "
            "driver, in turns with the app (A B B A)",
        },
        busy=busy,
        goal=GOAL,
    )
