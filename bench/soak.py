"""The soak (``make soak``): minutes of mixed load with retention set to minutes, to prove that
what retention prunes levels off and that no process leaks.

One ``storekeeper serve`` (embedded mode: the background leader, its consumers, jobs and pruning
run in it) on a fresh SQLite or PostgreSQL database, with every retention window set to
``--retention-minutes`` and pruning every ``--prune-every-s``. Against it, from this process:

- orders at ``--orders-per-s`` by 8 customers, each then cancelled (30 %), shipped (40 %) or left
  confirmed; they use SKUs 0-149 in BER/HAM/MUC (the nearest to a random ship-to);
- 5 ``Replica`` clients (device tokens bound to BER), each in its own thread: a few offline
  receives, counts and sales on SKUs 150-199, then ``sync()``; four every 15 s, the fifth every
  ``--slow-sync-s`` (longer than the window, so its cursor falls behind the pruned outbox and it
  must resync);
- telemetry: a batch of one reading for each of 200 BER sensors every 2 s.

The two SKU ranges are apart so that a replica's count cannot take stock an order reserved
(that would be a real shortage found by counting, not an oversell). Every minute one line:
database size (split into the pruned tables, the tables that grow with the business, and the
rest), row counts, RSS of each server process and of this one. At the end, with the load
stopped: 0 oversold and ledger = on-hand (``bench.checks``), every replica converged to the
server (``bench.w4.convergence``), and the pruned tables (rows and bytes), the database without
the growing tables, and every RSS levelled off (``levels_off``). The series goes to
``bench/results/soak-<backend>.json``; exit status 1 if any check failed.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from bench import checks, infra, report, seed, w4, w5
from bench.infra import BenchDatabase, Server
from bench.options import environment
from bench.w3 import SCOPE, device_token
from storekeeper_client import Replica, SyncError

ORDER_SKUS = 150
REPLICA_SKUS = 50
UNITS = 100_000
CUSTOMERS = 8
REPLICAS = 5
SYNC_EVERY_S = 15.0
TELEMETRY_EVERY_S = 2.0
_API = "/api/v1"

PRUNED = (
    "events_outbox",
    "events_inbox",
    "events_delivery_failure",
    "jobs",
    "ordering_idempotency",
    "telemetry_reading",
    "telemetry_minute",
)
"""Tables retention prunes: under a steady load their row counts must level off."""

GROWING = (
    "ordering_order",
    "ordering_order_line",
    "inventory_movement",
    "inventory_reservation",
    "sync_mutation",
    "reporting_movement",
    "reporting_level",
)
"""Tables that grow with the business on purpose (orders, the ledger and what mirrors it, the
replicas' replay guard: one row per movement a sync made): printed, not judged. The database
can therefore not stop growing; what must level off is its size without these tables."""

FLAT_TOLERANCE = 0.10
"""How much a pruned table or the database may grow over the last third, relative to its peak
over the middle third (a steady state wobbles with the prune passes; a leak grows by a third)."""

RSS_TOLERANCE = 0.05
"""The same for the resident memory of each process."""

ROWS_SLACK = 200
"""Rows of slack for tiny tables (a handful of jobs wobbling is no trend)."""


# --- the judgement ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Trend:
    """How a series moved between the middle third and the last third of the run."""

    middle_peak: float
    last_peak: float
    flat: bool

    @property
    def growth(self) -> float:
        """Growth of the peak from the middle third to the last, relative to the middle one."""
        return (self.last_peak - self.middle_peak) / self.middle_peak if self.middle_peak else 0.0


def levels_off(series: list[float], *, tolerance: float, slack: float = 0.0) -> Trend:
    """Whether ``series`` (one sample a minute) has levelled off: the peak of its last third is
    at most ``tolerance`` (relative) plus ``slack`` (absolute) above the peak of its middle third.

    Peaks, not means: a pruned table saw-tooths between prune passes, and its ceiling is what
    must stop rising. A series growing linearly fails (its last-third peak is about a third
    higher); one that rose while the windows filled and then stays passes. Fewer than three
    samples cannot show a trend: judged flat only if it did not grow at all.
    """
    if len(series) < 3:
        flat = not series or series[-1] <= series[0]
        return Trend(series[0] if series else 0.0, series[-1] if series else 0.0, flat)
    third = len(series) // 3
    middle = series[third : len(series) - third]
    last = series[len(series) - third :]
    middle_peak, last_peak = max(middle), max(last)
    return Trend(middle_peak, last_peak, last_peak <= middle_peak * (1 + tolerance) + slack)


# --- measuring --------------------------------------------------------------------------------


def _rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (``/proc``; 0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def _descendants(pid: int) -> list[int]:
    """``pid``'s children, grandchildren and so on (uvicorn workers, a multiprocessing helper)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            found += [child, *_descendants(child)]
    return found


def rss_by_process(server_pid: int) -> dict[str, int]:
    """RSS in KiB of the server, each of its descendants and this process (the load and the
    replicas), by a label that stays the same across samples."""
    rss = {f"server:{server_pid}": _rss_kib(server_pid)}
    for pid in _descendants(server_pid):
        rss[f"server-child:{pid}"] = _rss_kib(pid)
    rss[f"soak:{os.getpid()}"] = _rss_kib(os.getpid())
    return rss


def _database_bytes(db: BenchDatabase, engine: Engine) -> int:
    if db.backend == "sqlite":
        path = Path(db.driver_target)
        return sum(
            p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists()
        )
    with engine.connect() as connection:
        return int(
            connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
        )


_SQLITE_BYTES = (
    "SELECT m.tbl_name, SUM(s.pgsize) FROM dbstat s JOIN sqlite_master m ON m.name = s.name "
    "GROUP BY m.tbl_name"
)
_PG_BYTES = (
    "SELECT relname, pg_total_relation_size(oid) FROM pg_class "
    "WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
)


def _table_bytes(db: BenchDatabase, engine: Engine) -> dict[str, int]:
    """Bytes of each pruned and growing table with its indexes (SQLite's ``dbstat`` pages,
    PostgreSQL's ``pg_total_relation_size``: free space kept for reuse included)."""
    with engine.connect() as connection:
        sizes = {
            str(name): int(n or 0)
            for name, n in connection.execute(
                text(_SQLITE_BYTES if db.backend == "sqlite" else _PG_BYTES)
            )
        }
    return {table: sizes.get(table, 0) for table in (*PRUNED, *GROWING)}


def autovacuum_off(db: BenchDatabase, engine: Engine) -> bool:
    """Whether this PostgreSQL server runs without its autovacuum daemon (a test server tuned
    for speed): then nothing would reclaim what pruning deletes, whatever Storekeeper does."""
    if db.backend != "postgresql":
        return False
    with engine.connect() as connection:
        return str(connection.execute(text("SHOW autovacuum")).scalar_one()) == "off"


def vacuum_pruned(engine: Engine) -> None:
    """``VACUUM`` the pruned tables, as the autovacuum daemon would (its naptime is a minute)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in PRUNED:
            connection.execute(text(f"VACUUM {table}"))


def _row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table: int(connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
            for table in (*PRUNED, *GROWING)
        }


# --- the load ---------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the load threads did, shared between them."""

    counts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, what: str, n: int = 1) -> None:
        """Count ``n`` of ``what``."""
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + n

    def error(self, text_: str) -> None:
        """Remember an unexpected answer (the first 50)."""
        with self.lock:
            self.counts["errors"] = self.counts.get("errors", 0) + 1
            if len(self.errors) < 50:
                self.errors.append(text_[:300])


def _orders(
    server: Server, tokens: list[str], admin: str, per_s: float, stop: threading.Event, tally: Tally
) -> None:
    """Place orders at ``per_s``; cancel 30 %, ship 40 %, leave the rest confirmed."""
    rng = random.Random(17)
    staff = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        next_at = time.monotonic()
        while not stop.is_set():
            # A steady rate: after a stall (a busy machine) it goes on, it does not catch up.
            next_at = max(next_at + 1 / per_s, time.monotonic() - 1)
            stop.wait(max(0.0, next_at - time.monotonic()))
            lines = rng.sample(range(ORDER_SKUS), rng.randint(1, 3))
            area = seed.SHIP_TO_AREA
            body = {
                "lines": [{"sku": seed.sku(i), "qty": rng.randint(1, 3)} for i in lines],
                "ship_to": {
                    "lat": round(rng.uniform(area["lat_min"], area["lat_max"]), 4),
                    "lon": round(rng.uniform(area["lon_min"], area["lon_max"]), 4),
                },
                "payment": {"method": "manual"},
            }
            headers = {
                "Authorization": f"Bearer {rng.choice(tokens)}",
                "Idempotency-Key": uuid.uuid4().hex,
            }
            try:
                placed = http.post(f"{_API}/orders", json=body, headers=headers)
                if placed.status_code != 201:
                    tally.error(f"POST /orders: {placed.status_code} {placed.text}")
                    continue
                tally.add("orders")
                order_id = placed.json()["id"]
                fate = rng.random()
                if fate < 0.3:
                    done = http.post(f"{_API}/orders/{order_id}/cancel", headers=staff)
                    what = "cancelled"
                elif fate < 0.7:
                    done = http.post(f"{_API}/orders/{order_id}/ship", headers=staff)
                    what = "shipped"
                else:
                    continue
                if done.status_code == 200:
                    tally.add(what)
                else:
                    tally.error(f"{what}: {done.status_code} {done.text}")
            except httpx.HTTPError as exc:
                tally.error(f"orders: {exc!r}")


def _replica(
    path: Path,
    server: Server,
    token: str,
    *,
    index: int,
    every_s: float,
    stop: threading.Event,
    tally: Tally,
) -> None:
    """A few offline mutations, then ``sync()``, every ``every_s`` until ``stop``; a last sync."""
    rng = random.Random(900 + index)
    skus = [seed.sku(ORDER_SKUS + i) for i in range(REPLICA_SKUS)]
    with Replica(path, server.url, token, scope=SCOPE, page_size=5000) as replica:
        while True:
            final = stop.wait(every_s)
            if not final:
                for _ in range(rng.randint(3, 10)):
                    w4.random_mutation(replica, rng, skus)
                    tally.add("replica_mutations")
            for attempt in range(5):
                try:
                    summary = replica.sync()
                except SyncError as exc:
                    tally.error(f"replica {index} sync attempt {attempt + 1}: {exc}")
                    time.sleep(1.0)
                    continue
                tally.add("syncs")
                tally.add("resyncs", int(summary.resynced))
                tally.add(f"resyncs:replica-{index}", int(summary.resynced))
                tally.add("sync_conflicts", summary.conflicts)
                tally.add("sync_rejected", summary.rejected)
                break
            if final:
                return


def _telemetry(server: Server, token: str, stop: threading.Event, tally: Tally) -> None:
    """One reading per BER sensor every ``TELEMETRY_EVERY_S``, stamped now."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        while not stop.wait(TELEMETRY_EVERY_S):
            try:
                response = http.post(
                    f"{_API}/telemetry", content=w5.readings_body(datetime.now(UTC))
                )
            except httpx.HTTPError as exc:
                tally.error(f"telemetry: {exc!r}")
                continue
            if response.status_code != 200:
                tally.error(f"telemetry: {response.status_code} {response.text}")
                continue
            body = response.json()
            tally.add("readings_stored", body["stored"])
            tally.add("readings_rejected", body["rejected"])


# --- the run ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SoakOptions:
    """What ``make soak`` passes (``SOAK_ARGS``)."""

    minutes: float
    backend: str
    retention_minutes: float
    prune_every_s: float
    orders_per_s: float
    slow_sync_s: float
    sample_s: float
    workers: int
    results_dir: Path
    workdir: Path


def _server_env(db: BenchDatabase, opts: SoakOptions) -> dict[str, str]:
    days = f"{opts.retention_minutes / (24 * 60):.8f}"
    return infra.server_env(
        db,
        {
            "STOREKEEPER_SYNC_RETENTION_DAYS": days,
            "STOREKEEPER_JOB_DONE_RETENTION_DAYS": days,
            "STOREKEEPER_JOB_FAILED_RETENTION_DAYS": days,
            "STOREKEEPER_IDEMPOTENCY_RETENTION_HOURS": f"{opts.retention_minutes / 60:.6f}",
            "STOREKEEPER_TELEMETRY_RAW_RETENTION_DAYS": days,
            "STOREKEEPER_TELEMETRY_MINUTE_RETENTION_DAYS": days,
            "STOREKEEPER_PRUNE_EVERY_S": str(opts.prune_every_s),
        },
    )


def _seed(db: BenchDatabase) -> tuple[str, list[str], list[str]]:
    """Sensors (and warehouses), products with stock everywhere, customers; the admin token,
    the customers' tokens and every SKU."""
    admin = w5.seed_sensors(db)
    with infra.container_for(db) as container:
        skus = seed.seed_products(container.db, count=ORDER_SKUS + REPLICA_SKUS)
        seed.seed_stock(container.db, skus=skus, units=UNITS)
        customers = seed.seed_customers(
            container.db, count=CUSTOMERS, signing_key=container.signing_key
        )
    return admin, [c.token for c in customers], skus


def _sample(
    db: BenchDatabase,
    engine: Engine,
    server: Server,
    started: float,
    tally: Tally,
    *,
    vacuum: bool,
) -> dict[str, Any]:
    if vacuum:
        vacuum_pruned(engine)
    with tally.lock:
        done = dict(tally.counts)
    table_bytes = _table_bytes(db, engine)
    db_bytes = _database_bytes(db, engine)
    return {
        "minute": round((time.monotonic() - started) / 60, 2),
        "db_bytes": db_bytes,
        "pruned_bytes": sum(table_bytes[t] for t in PRUNED),
        "growing_bytes": sum(table_bytes[t] for t in GROWING),
        "rest_bytes": db_bytes - sum(table_bytes[t] for t in GROWING),
        "table_bytes": table_bytes,
        "rows": _row_counts(engine),
        "mail_files": sum(1 for _ in (db.data_dir / "outbox-mail").glob("*.eml")),
        "rss_kib": rss_by_process(server.process.pid),
        "load": done,
    }


def _print_sample(sample: dict[str, Any]) -> None:
    rows = sample["rows"]
    mib = {
        k: sample[k] / 2**20 for k in ("db_bytes", "pruned_bytes", "growing_bytes", "rest_bytes")
    }
    rss = ", ".join(
        f"{name.split(':')[0]} {kib / 1024:.0f}" for name, kib in sample["rss_kib"].items()
    )
    print(
        f"  {sample['minute']:5.1f} min  db {mib['db_bytes']:6.1f} MiB "
        f"(pruned {mib['pruned_bytes']:5.1f}, growing {mib['growing_bytes']:5.1f}, "
        f"rest {mib['rest_bytes']:5.1f})  "
        f"outbox {rows['events_outbox']:6d}  inbox {rows['events_inbox']:6d}  "
        f"jobs {rows['jobs']:5d}  idem {rows['ordering_idempotency']:5d}  "
        f"telem {rows['telemetry_reading']:6d}/{rows['telemetry_minute']:5d}  "
        f"mail {sample['mail_files']:5d}  "
        f"| orders {rows['ordering_order']:6d}  ledger {rows['inventory_movement']:6d}  "
        f"sync {rows['sync_mutation']:5d}  | RSS MiB {rss}",
        flush=True,
    )


def _judge(samples: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """Every pruned table, the database size and every process's RSS: flat or not."""
    series: dict[str, tuple[list[float], float, float]] = {
        "bytes:pruned_tables": ([s["pruned_bytes"] for s in samples], FLAT_TOLERANCE, 0.0),
        "bytes:database_without_growing_tables": (
            [s["rest_bytes"] for s in samples],
            FLAT_TOLERANCE,
            0.0,
        ),
    }
    series["mail_files"] = ([s["mail_files"] for s in samples], FLAT_TOLERANCE, ROWS_SLACK)
    for table in PRUNED:
        series[f"rows:{table}"] = ([s["rows"][table] for s in samples], FLAT_TOLERANCE, ROWS_SLACK)
    for name in samples[0]["rss_kib"]:
        values = [s["rss_kib"].get(name, 0) for s in samples]
        series[f"rss:{name}"] = (values, RSS_TOLERANCE, 0.0)
    verdicts: dict[str, Any] = {}
    problems: list[str] = []
    for name, (values, tolerance, slack) in series.items():
        trend = levels_off(values, tolerance=tolerance, slack=slack)
        verdicts[name] = {
            "middle_third_peak": trend.middle_peak,
            "last_third_peak": trend.last_peak,
            "growth": round(trend.growth, 4),
            "flat": trend.flat,
        }
        if not trend.flat:
            problems.append(
                f"{name} did not level off: peak {trend.middle_peak:.0f} in the middle third, "
                f"{trend.last_peak:.0f} in the last ({trend.growth:+.1%})"
            )
    return verdicts, problems


def run(opts: SoakOptions) -> bool:
    """The soak; True if every check passed."""
    report.heading(
        f"Soak on {opts.backend}: {opts.minutes:g} min, retention {opts.retention_minutes:g} min, "
        f"prune every {opts.prune_every_s:g} s"
    )
    tally = Tally()
    samples: list[dict[str, Any]] = []
    paths = [opts.workdir / f"soak-replica-{i}.db" for i in range(REPLICAS)]
    with infra.fresh_database(opts.backend, "soak", opts.workdir) as db:
        admin, tokens, skus = _seed(db)
        engine = create_engine(db.url)
        vacuum = autovacuum_off(db, engine)
        if vacuum:
            print("  autovacuum is off on this server: the soak vacuums the pruned tables")
        port = infra.free_port()
        with infra.serve(
            infra.storekeeper_command(port, opts.workers),
            port=port,
            env=_server_env(db, opts),
            workdir=opts.workdir,
            name=f"soak-{opts.backend}",
        ) as server:
            devices = [
                device_token(server, admin, label=f"soak-replica-{i}", scope=SCOPE)
                for i in range(REPLICAS)
            ]
            sensors = device_token(server, admin, label="soak-sensors", scope=SCOPE)
            stop = threading.Event()
            threads = [
                threading.Thread(
                    target=_orders, args=(server, tokens, admin, opts.orders_per_s, stop, tally)
                ),
                threading.Thread(target=_telemetry, args=(server, sensors, stop, tally)),
                *(
                    threading.Thread(
                        target=_replica,
                        args=(paths[i], server, devices[i]),
                        kwargs={
                            "index": i,
                            "every_s": opts.slow_sync_s if i == REPLICAS - 1 else SYNC_EVERY_S,
                            "stop": stop,
                            "tally": tally,
                        },
                    )
                    for i in range(REPLICAS)
                ),
            ]
            started = time.monotonic()
            for thread in threads:
                thread.start()
            end = started + opts.minutes * 60
            try:
                while (now := time.monotonic()) < end:
                    time.sleep(min(opts.sample_s, end - now))
                    samples.append(_sample(db, engine, server, started, tally, vacuum=vacuum))
                    _print_sample(samples[-1])
            finally:
                stop.set()
                for thread in threads:
                    thread.join()
            print(f"  load stopped; the replicas synced a last time: {tally.counts}", flush=True)
            problems = w4.convergence(db, server, admin, paths, skus)
        with infra.container_for(db) as container:
            integrity = checks.verify(container.db)
        engine.dispose()
    if not integrity.ok:
        problems.append(f"integrity: {integrity.to_json()}")
    if tally.errors:
        problems.append(
            f"{tally.counts.get('errors', 0)} unexpected answers, e.g. {tally.errors[0]}"
        )
    verdicts, trend_problems = _judge(samples) if samples else ({}, ["no samples"])
    problems += trend_problems
    report.line("oversold units", str(integrity.oversold_units))
    report.line("ledger = on-hand", "yes" if not integrity.ledger_mismatches else "NO")
    report.line("replicas converged", "yes" if not any("replica" in p for p in problems) else "NO")
    report.line("levels off", "yes" if not trend_problems else "NO")
    for problem in problems[:30]:
        print(f"  FAILED: {problem}", flush=True)
    path = report.write(
        opts.results_dir,
        f"soak-{opts.backend}",
        {
            "name": "soak",
            "backend": opts.backend,
            "clean": not problems,
            "problems": problems,
            "samples": samples,
            "trends": verdicts,
            "integrity": integrity.to_json(),
            "load": tally.counts,
            "errors": tally.errors,
            "setup": {
                "minutes": opts.minutes,
                "retention_minutes": opts.retention_minutes,
                "prune_every_s": opts.prune_every_s,
                "orders_per_s": opts.orders_per_s,
                "order_fates": "30 % cancelled, 40 % shipped, 30 % left confirmed",
                "replicas": REPLICAS,
                "sync_every_s": SYNC_EVERY_S,
                "slow_replica_sync_every_s": opts.slow_sync_s,
                "telemetry": f"{w5.SENSORS} readings every {TELEMETRY_EVERY_S:g} s",
                "workers": opts.workers,
                "pruned_tables": PRUNED,
                "growing_tables": GROWING,
                "flat_tolerance": FLAT_TOLERANCE,
                "rss_tolerance": RSS_TOLERANCE,
                "vacuum": "the soak ran VACUUM on the pruned tables before each sample: "
                "autovacuum was off on this server"
                if vacuum
                else None,
            },
            "environment": environment(),
        },
    )
    print(f"  results: {path}", flush=True)
    return not problems


def parse(argv: list[str] | None = None) -> SoakOptions:
    """``SOAK_ARGS`` to options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "postgres"), default="sqlite")
    parser.add_argument("--retention-minutes", type=float, default=2.0)
    parser.add_argument("--prune-every-s", type=float, default=30.0)
    parser.add_argument("--orders-per-s", type=float, default=10.0)
    parser.add_argument("--slow-sync-s", type=float, default=150.0)
    parser.add_argument("--sample-s", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--results-dir", type=Path, default=infra.REPO_ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    return SoakOptions(
        minutes=args.minutes,
        backend="postgresql" if args.backend == "postgres" else args.backend,
        retention_minutes=args.retention_minutes,
        prune_every_s=args.prune_every_s,
        orders_per_s=args.orders_per_s,
        slow_sync_s=args.slow_sync_s,
        sample_s=args.sample_s,
        workers=args.workers,
        results_dir=args.results_dir,
        workdir=Path(tempfile.mkdtemp(prefix="storekeeper-soak-")),
    )


def main(argv: list[str] | None = None) -> int:
    """Run the soak; 0 if every check passed, 1 otherwise (the work directory is then kept)."""
    opts = parse(argv)
    # `kill` stops the load and the server too (the blocks' `finally`), as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if run(opts):
        shutil.rmtree(opts.workdir, ignore_errors=True)
        return 0
    print(f"  server log and replica files kept in {opts.workdir}", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
