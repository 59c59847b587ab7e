"""W8 import: a 100k-row product + stock CSV through ``storekeeper.imports`` (as the CLI runs
it, stock ``add`` into BER), in a fresh database.

Figures: rows/s of the whole run (parse, check every row, apply in batches); the longest write
transaction the import held (the batches, measured around every ``Database.transaction`` of the
run: on SQLite the write lock is held at most that long, on PostgreSQL the batch's row locks);
and the same for the check (reads only, no write lock).

Ceiling in the same run: the same rows (products, stock rows, receipt movements) inserted into
another fresh database with one executemany per table in one transaction through the raw driver
(sqlite3 / psycopg). The import does more per row (parsing, validation, the dry-run comparison,
barcodes, field clocks, outbox events, the run's progress): the ratio says how much.

Orders during an import (DESIGN.md section 9): in a third fresh database with W2's catalog,
customers and stock, a server takes W2's orders (manual payment, ``ORDER_CONNECTIONS``
clients) for ``--duration`` alone, then while the same file is imported in this process (as
``storekeeper import`` would, next to a running server); the figure is the order rate during
the import over the rate alone, both measured on the same server in the same run. That
import's own rate is printed too: it shares the machine with the server and the load.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg

from bench import infra, report, w2
from bench.infra import BenchDatabase
from bench.loadgen import run_load
from bench.measure import LoadResult, merge
from bench.options import Options, environment
from storekeeper.db import Database
from storekeeper.imports import service
from storekeeper.inventory.warehouses import create_warehouse

ROWS = int(os.environ.get("BENCH_W8_ROWS", "100000"))
GOAL_RATIO = 0.3
GOAL_HOLD_MS = 250.0
ORDER_CONNECTIONS = 8
"""A shop's steady trickle of orders, not W2's saturating 32 clients: the question is whether
orders keep flowing, not how many the server can take at most."""
ORDER_SLICE_S = 1.0
"""Orders during the import are measured in slices of this many seconds until it ends."""
HEADER = "sku,name,price_cents,currency,attributes,min_temp_c,max_temp_c,barcodes,quantity"


def _csv(rows: int) -> bytes:
    lines = [HEADER]
    for n in range(rows):
        chilled = n % 5 == 0
        temps = "2,7" if chilled else ","
        lines.append(
            f'W8-{n:06d},Item {n} of the bench,{99 + n % 9000},EUR,"{{""n"": {n}}}",{temps},,'
            f"{n % 20 + 1}"
        )
    return ("\n".join(lines) + "\n").encode()


@contextlib.contextmanager
def _timed_transactions(db: Database, holds: list[float]) -> Iterator[None]:
    """Record how long each write transaction of ``db`` lasts, for the block."""
    original = db.transaction

    @contextlib.contextmanager
    def timed() -> Iterator[Any]:
        start = time.perf_counter()
        try:
            with original() as session:
                yield session
        finally:
            holds.append(time.perf_counter() - start)

    db.transaction = timed  # type: ignore[method-assign]
    try:
        yield
    finally:
        db.transaction = original  # type: ignore[method-assign]


def _submit(db: Database, content: bytes, *, create_ber: bool) -> int:
    with db.transaction() as session:
        if create_ber:
            create_warehouse(session, code="BER", name="Berlin", lat=52.5, lon=13.4)
        return service.submit(
            session,
            content=content,
            filename="w8.csv",
            stock_mode="add",
            warehouse="BER",
            dry_run=False,
            actor_id=None,
        )


def _run_import(db: Database, run_id: int) -> dict[str, Any]:
    holds: list[float] = []
    start = time.perf_counter()
    with _timed_transactions(db, holds):
        view = service.run(db, run_id=run_id)
    elapsed = time.perf_counter() - start
    if view.status != "done" or view.result["counts"]["new"] != ROWS:
        raise RuntimeError(f"W8 import did not finish cleanly: {view.status} {view.result}")
    return {"seconds": elapsed, "holds": holds}


def _import(bench_db: BenchDatabase, content: bytes) -> dict[str, Any]:
    with infra.container_for(bench_db) as container:
        run_id = _submit(container.db, content, create_ber=True)
        return _run_import(container.db, run_id)


def _orders(bench_db: BenchDatabase, content: bytes, options: Options) -> dict[str, Any]:
    """W2's orders alone, then during the import of ``content``, on one server."""
    with infra.container_for(bench_db) as container:
        customers = w2.seed_orders(container)  # BER, HAM and MUC among them
        run_id = _submit(container.db, content, create_ber=False)
        port = infra.free_port()
        command = infra.storekeeper_command(port, options.workers)
        with infra.serve(
            command,
            port=port,
            env=infra.server_env(bench_db),
            workdir=options.workdir,
            name=f"W8-{bench_db.backend}-orders",
        ) as server:

            def load(seconds: float) -> LoadResult:  # a fresh run id: keys must never repeat
                spec = w2.orders_spec(customers)
                return run_load(
                    spec,
                    server.url,
                    connections=ORDER_CONNECTIONS,
                    duration_s=seconds,
                    workdir=options.workdir,
                )

            load(options.warmup_s)
            alone = load(options.duration_s)
            measured: dict[str, Any] = {}
            failed: list[BaseException] = []

            def work() -> None:
                try:
                    measured.update(_run_import(container.db, run_id))
                except BaseException as exc:  # reported below, in the bench's thread
                    failed.append(exc)

            importer = threading.Thread(target=work, name="w8-import")
            importer.start()
            slices: list[LoadResult] = []
            while importer.is_alive():
                slices.append(load(ORDER_SLICE_S))
            importer.join()
        if failed:
            raise failed[0]
    during = merge(slices)
    return {"alone": alone, "during": during, "import": measured}


def _accepted_rate(load: LoadResult) -> float:
    return load.statuses.get("201", 0) / load.duration_s if load.duration_s else 0.0


def _ceiling_rows(content: bytes) -> tuple[list[tuple[Any, ...]], ...]:
    """The rows the import writes, as the driver inserts them."""
    from datetime import UTC, datetime

    now = datetime.now(UTC).isoformat()
    products, stock, movements = [], [], []
    for line in content.decode().splitlines()[1:]:
        sku, name, price = line.split(",", 3)[:3]
        quantity = int(line.rsplit(",", 1)[1])
        products.append((sku, name, int(price), "EUR", json.dumps({"n": 1}), 1, now, now, "{}"))
        stock.append((sku, "BER", quantity, 0, 1, now))
        movements.append((sku, "BER", quantity, "receipt", f"import:{sku}", now))
    return products, stock, movements


_SQL = (
    "INSERT INTO catalog_product (sku, name, price_cents, currency, attributes, version, "
    "created_at, updated_at, field_hlcs) VALUES ({})",
    "INSERT INTO inventory_stock (sku, warehouse_code, on_hand, reserved, version, updated_at) "
    "VALUES ({})",
    "INSERT INTO inventory_movement (sku, warehouse_code, delta, reason, ref, created_at) "
    "VALUES ({})",
)
_WAREHOUSE = "INSERT INTO inventory_warehouse (code, name, lat, lon, created_at) VALUES ({})"


def _ceiling(bench_db: BenchDatabase, content: bytes) -> float:
    tables = _ceiling_rows(content)
    warehouse = ("BER", "Berlin", 52.5, 13.4, "2026-01-01T00:00:00+00:00")
    if bench_db.backend == "sqlite":
        connection = sqlite3.connect(bench_db.driver_target)
        connection.execute(_WAREHOUSE.format(",".join("?" * 5)), warehouse)
        connection.commit()
        start = time.perf_counter()
        with connection:
            for sql, rows in zip(_SQL, tables, strict=True):
                connection.executemany(sql.format(",".join("?" * len(rows[0]))), rows)
        elapsed = time.perf_counter() - start
        connection.close()
        return elapsed
    with psycopg.connect(bench_db.driver_target) as connection:
        connection.execute(_WAREHOUSE.format(",".join(["%s"] * 5)), warehouse)
        connection.commit()
        start = time.perf_counter()
        with connection.cursor() as cursor:
            for sql, rows in zip(_SQL, tables, strict=True):
                cursor.executemany(sql.format(",".join(["%s"] * len(rows[0]))), rows)
        connection.commit()
        return time.perf_counter() - start


def run(backend: str, options: Options) -> tuple[dict[str, Any], bool]:
    """W8 on ``backend``: figures, and whether they are clean."""
    report.heading(f"W8 import of {ROWS:,} rows ({backend})")
    content = _csv(ROWS)
    with infra.fresh_database(backend, "w8_import", options.workdir) as bench_db:
        measured = _import(bench_db, content)
    with infra.fresh_database(backend, "w8_ceiling", options.workdir) as bench_db:
        ceiling_s = _ceiling(bench_db, content)
    with infra.fresh_database(backend, "w8_orders", options.workdir) as bench_db:
        orders = _orders(bench_db, content, options)
    rows_per_s = ROWS / measured["seconds"]
    ceiling_rows_per_s = ROWS / ceiling_s
    holds_ms = sorted(h * 1000 for h in measured["holds"])
    longest = holds_ms[-1] if holds_ms else 0.0
    ratio = report.ratio(rows_per_s, ceiling_rows_per_s)
    report.line("import", f"{rows_per_s:,.0f} rows/s ({measured['seconds']:.1f} s)")
    report.line("ceiling (executemany)", f"{ceiling_rows_per_s:,.0f} rows/s ({ceiling_s:.2f} s)")
    report.line("ratio", report.verdict(ratio, GOAL_RATIO))
    report.line(
        "write transactions",
        f"{len(holds_ms)}, longest {longest:.0f} ms (goal <= {GOAL_HOLD_MS:.0f} ms: "
        f"{'met' if longest <= GOAL_HOLD_MS else 'NOT met'}), "
        f"median {holds_ms[len(holds_ms) // 2]:.0f} ms",
    )
    alone_rate, during_rate = _accepted_rate(orders["alone"]), _accepted_rate(orders["during"])
    orders_ratio = report.ratio(during_rate, alone_rate)
    refused = {
        name: orders[name].requests
        - orders[name].statuses.get("201", 0)
        + orders[name].socket_errors
        for name in ("alone", "during")
    }
    during_import_s = orders["import"]["seconds"]
    during_holds = sorted(h * 1000 for h in orders["import"]["holds"])
    report.line(
        "orders alone",
        f"{alone_rate:,.1f} orders/s, p99 {orders['alone'].p99_ms:.0f} ms "
        f"({ORDER_CONNECTIONS} clients, {refused['alone']} not 201)",
    )
    report.line(
        "orders during import",
        f"{during_rate:,.1f} orders/s, p99 {orders['during'].p99_ms:.0f} ms, "
        f"max {orders['during'].max_ms:.0f} ms ({refused['during']} not 201)",
    )
    report.line("orders during / alone", f"{orders_ratio:.2f}")
    report.line(
        "import next to orders",
        f"{ROWS / during_import_s:,.0f} rows/s ({during_import_s:.1f} s), longest write "
        f"{during_holds[-1] if during_holds else 0.0:.0f} ms",
    )
    result = {
        "benchmark": "W8",
        "backend": backend,
        "rows": ROWS,
        "first_batch_rows": service.BATCH_ROWS,
        "target_batch_ms": service.TARGET_BATCH_S * 1000,
        "import_rows_per_s": round(rows_per_s),
        "import_seconds": round(measured["seconds"], 2),
        "ceiling_rows_per_s": round(ceiling_rows_per_s),
        "ratio": round(ratio, 3),
        "goal_ratio": GOAL_RATIO,
        "write_transactions": len(holds_ms),
        "longest_write_ms": round(longest, 1),
        "write_ms": [round(h, 1) for h in holds_ms[-5:]],
        "median_write_ms": round(holds_ms[len(holds_ms) // 2], 1),
        "goal_longest_write_ms": GOAL_HOLD_MS,
        "orders": {
            "connections": ORDER_CONNECTIONS,
            "alone_per_s": round(alone_rate, 1),
            "during_import_per_s": round(during_rate, 1),
            "ratio": round(orders_ratio, 3),
            "alone_p99_ms": round(orders["alone"].p99_ms, 1),
            "during_p99_ms": round(orders["during"].p99_ms, 1),
            "during_max_ms": round(orders["during"].max_ms, 1),
            "not_201": refused,
            "import_rows_per_s": round(ROWS / during_import_s),
            "import_longest_write_ms": round(during_holds[-1], 1) if during_holds else 0.0,
        },
        "environment": environment(),
    }
    report.write(options.results_dir, f"W8-{backend}", result)
    return result, not refused["alone"] and not refused["during"]
