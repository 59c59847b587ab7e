"""W9 reports: each report over a ledger of 1M movements, as a multiple of one full scan of it.

The rows go straight into the reporting context's read model (``reporting_movement``, what
the reports read): 5,000 SKUs x 3 warehouses over two years, receipts with costs, sales with
values, counts. Months are closed into snapshots first (timed, not part of the ratios). Each
report's median of three runs is divided by the median of a full scan of the same table
(``SELECT count(*), sum(delta)``) in the same run: goal at most 3 scans per report, and at
most 1 for the reads "as of a date", which start from a snapshot.

    .venv/bin/python -m bench --only W9 [--backend sqlite|postgresql]
    STOREKEEPER_BENCH_W9_ROWS=200000 ... (fewer rows for a quick look)
"""

from __future__ import annotations

import os
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, text

from bench import infra, report
from bench.options import Options
from storekeeper.reporting import balances, service, stock
from storekeeper.reporting.forecast import service as forecast_service
from storekeeper.reporting.models import LedgerRow

ROWS = int(os.environ.get("STOREKEEPER_BENCH_W9_ROWS", "1000000"))
SKUS = 5_000
WAREHOUSES = ("BER", "HAM", "MUC")
DAYS = 730
GOAL = 3.0
GOAL_AS_OF = 1.0
RUNS = 3


def _seed(db: Any, now: datetime) -> None:
    """``ROWS`` movements in time order; a tenth are receipts, most are single-unit sales."""
    table = cast(Table, LedgerRow.__table__)
    rng = random.Random(9)
    start = now - timedelta(days=DAYS)
    step = timedelta(days=DAYS) / ROWS
    batch: list[dict[str, Any]] = []
    for i in range(ROWS):
        sku = f"SKU-{rng.randrange(SKUS):05d}"
        kind = rng.random()
        delta, reason, cost, value = -1, "sale", None, 500
        if kind < 0.12:
            delta, reason, cost, value = 20, "receipt", rng.randrange(100, 400), None
        elif kind < 0.14:
            delta, reason, value = rng.choice((-1, 1)), "count", None
        batch.append(
            {
                "movement_id": i + 1,
                "sku": sku,
                "warehouse": WAREHOUSES[rng.randrange(3)],
                "delta": delta,
                "reason": reason,
                "ref": None,
                "unit_cost_cents": cost,
                "sale_value_cents": value,
                "currency": "EUR" if value is not None else None,
                "moved_at": start + step * i,
            }
        )
        if len(batch) == 10_000:
            with db.transaction() as session:
                session.execute(insert(table), batch)
            batch = []
    if batch:
        with db.transaction() as session:
            session.execute(insert(table), batch)


def _median_s(read: Callable[[], Any]) -> float:
    read()  # warm the caches once
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        read()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _forecast_input(today: date) -> Callable[[Any], Any]:
    """The extract as the forecast job gets it: ``daily_demand`` and the series arrays built
    from it (``build_series``), so a cost moved from one to the other still shows."""
    since = today - timedelta(days=89)

    def read(session: Any) -> Any:
        demand = service.daily_demand(session, since=since, until=today)
        return forecast_service.build_series(demand, since=since, until=today)

    return read


def run(backend: str, opts: Options) -> tuple[dict[str, Any], bool]:
    """Run W9 on ``backend``; the results document and whether it was clean."""
    report.heading(f"W9 reports on {backend} ({ROWS:,} ledger rows)")
    now = datetime.now(UTC)
    today = now.date()
    with (
        infra.fresh_database(backend, "w9", opts.workdir) as bench_db,
        infra.container_for(bench_db) as container,
    ):
        db = container.db
        started = time.perf_counter()
        _seed(db, now)
        seeded_s = time.perf_counter() - started
        if backend == "postgresql":
            # Autovacuum's ANALYZE, now rather than whenever it wakes: plans on fresh statistics.
            with db.transaction() as session:
                session.execute(text("ANALYZE reporting_movement"))
        started = time.perf_counter()
        with db.transaction() as session:
            closed = balances.close_periods(session, now=now)
        closing_s = time.perf_counter() - started
        print(f"  seeded in {seeded_s:.1f} s; {closed} months closed in {closing_s:.1f} s")

        def reading(read: Callable[[Any], Any]) -> Callable[[], Any]:
            def run_once() -> Any:
                with db.reading() as session:
                    return read(session)

            return run_once

        ledger = cast(Table, LedgerRow.__table__)
        scan = _median_s(
            reading(lambda s: s.execute(select(func.count(), func.sum(ledger.c.delta))).one())
        )
        year_ago = today - timedelta(days=365)
        mid = today - timedelta(days=200)
        cases: dict[str, tuple[Callable[[], Any], float]] = {
            "sales, last 30 days": (
                reading(lambda s: service.sales(s, since=today - timedelta(days=29), until=today)),
                GOAL,
            ),
            "sales, two years by warehouse": (
                reading(
                    lambda s: service.sales(
                        s, since=today - timedelta(days=DAYS), until=today, by="warehouse"
                    )
                ),
                GOAL,
            ),
            "dead stock, 90 days": (reading(lambda s: service.dead_stock(s, days=90)), GOAL),
            "low stock": (reading(lambda s: service.low_stock(s, threshold=5)), GOAL),
            "abc, last year": (
                reading(lambda s: service.abc(s, since=year_ago, until=today)),
                GOAL,
            ),
            "stock history of a SKU, last year": (
                reading(
                    lambda s: stock.stock_history(s, sku="SKU-00042", since=year_ago, until=today)
                ),
                GOAL,
            ),
            "valuation today": (reading(lambda s: stock.valuation(s, at=today)), GOAL_AS_OF),
            "valuation 200 days ago": (reading(lambda s: stock.valuation(s, at=mid)), GOAL_AS_OF),
            "on-hand as of 200 days ago": (
                reading(lambda s: balances.on_hand(s, until=balances.midnight(mid))),
                GOAL_AS_OF,
            ),
            "daily demand, 90 days (forecast input)": (reading(_forecast_input(today)), GOAL),
        }
        results: dict[str, Any] = {}
        print(f"  {'one full scan of the ledger':45s} {scan * 1000:9.1f} ms")
        for name, (read, goal) in cases.items():
            seconds = _median_s(read)
            scans = report.ratio(seconds, scan)
            met = scans <= goal
            print(
                f"  {name:45s} {seconds * 1000:9.1f} ms  {scans:6.2f} scans"
                f"  (goal <= {goal:g}{'' if met else ', NOT MET'})"
            )
            results[name] = {
                "ms": round(seconds * 1000, 2),
                "scans": round(scans, 3),
                "goal": goal,
                "goal_met": met,
            }
    document = {
        "workload": "W9",
        "name": "reports",
        "backend": backend,
        "rows": ROWS,
        "seed_s": round(seeded_s, 1),
        "close_periods_s": round(closing_s, 1),
        "scan_ms": round(scan * 1000, 2),
        "cases": results,
        "ratio": max(c["scans"] for c in results.values()),
        "ratio_meaning": "report seconds / one full ledger scan's seconds, worst report "
        "(lower is better)",
        "goal": GOAL,
        "goal_met": all(c["goal_met"] for c in results.values()),
        "clean": True,
    }
    return document, True
