"""How long the console dashboard's cards take at scale: 100k products, all of them in stock in
BER, HAM and MUC (300k stock rows), and 1M ledger movements.

    .venv/bin/python -m bench.dashboard_stock [--backend sqlite|postgresql] [--products N]

Prints the median of five runs of each read, in milliseconds: the parts of the stock card
(inventory's GROUP BY per warehouse, its on-hand rows, catalog's prices and their stamp), the
card with nothing kept (every value computed: on-hand x price combined in Python), after a
movement in one warehouse (its value computed again), and unchanged (values kept); then every
card of the dashboard, and the whole page's data, as a manager and as a clerk of one warehouse.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, insert

from bench import seed
from bench.infra import container_for, fresh_database
from storekeeper.accounts.domain import Principal, Role
from storekeeper.catalog import service as catalog_service
from storekeeper.db import utcnow
from storekeeper.inventory import ledger, levels
from storekeeper.inventory.models import Movement
from storekeeper.web import dashboard

RUNS = 5


def _median_ms(read: Callable[[], Any], before: Callable[[], Any] | None = None) -> float:
    """The median time of ``read``, each run after an untimed ``before`` if given."""
    read()  # warm the caches once
    times = []
    for _ in range(RUNS):
        if before is not None:
            before()
        start = time.perf_counter()
        read()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _more_movements(db: Any, count: int) -> None:
    """``count`` more ledger rows that cancel out in pairs (+1/-1), so on-hand still matches."""
    table = cast(Table, Movement.__table__)
    now = utcnow()
    rows = [
        {
            "sku": seed.sku(i // 2 % 100_000),
            "warehouse_code": "BER",
            "delta": 1 if i % 2 == 0 else -1,
            "reason": "correction",
            "ref": "bench",
            "created_at": now,
        }
        for i in range(count)
    ]
    with db.transaction() as session:
        for start in range(0, len(rows), 5000):
            session.execute(insert(table), rows[start : start + 5000])


def main() -> None:
    """Seed, then time each read."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--products", type=int, default=100_000)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as workdir,
        fresh_database(args.backend, "dashboard", Path(workdir)) as bench_db,
        container_for(bench_db) as container,
    ):
        db = container.db
        started = time.perf_counter()
        skus = seed.seed_products(db, count=args.products)
        seed.seed_warehouses(db)
        seed.seed_stock(db, skus=skus, units=20)
        _more_movements(db, 1_000_000 - 3 * len(skus))
        took = time.perf_counter() - started
        print(f"seeded {len(skus)} products x 3 warehouses, 1M movements in {took:.0f} s")

        manager = Principal(user_id=uuid.uuid4(), role=Role.MANAGER)
        clerk = Principal(user_id=uuid.uuid4(), role=Role.CLERK, warehouses=frozenset({"BER"}))
        settings = container.settings

        def reading(read: Callable[[Any], Any]) -> Callable[[], Any]:
            def run() -> Any:
                with db.reading() as session:
                    return read(session)

            return run

        def cold(warehouses: frozenset[str] | None) -> Callable[[], Any]:
            def run() -> Any:
                dashboard._STOCK_VALUES.pop(db, None)  # forget the kept values and prices
                return dashboard.stock_summary(db, warehouses=warehouses)

            return run

        def a_movement_in_berlin() -> None:
            with db.transaction() as session:
                ledger.record_movement(
                    session,
                    sku=skus[0],
                    warehouse="BER",
                    delta=1,
                    reason="receipt",
                    ref=None,
                    actor_id=None,
                )

        figures: dict[str, Callable[[], Any]] = {
            "inventory totals_by_warehouse (units + stamps)": reading(
                lambda s: levels.totals_by_warehouse(s, warehouses=None)
            ),
            "inventory on_hand_by_sku, all (300k rows)": reading(
                lambda s: levels.on_hand_by_sku(s, warehouses=None)
            ),
            "catalog prices, all (100k)": reading(lambda s: catalog_service.prices(s)),
            "catalog prices_stamp": reading(lambda s: catalog_service.prices_stamp(s)),
            "stock card, nothing kept, manager (3 warehouses)": cold(None),
            "stock card, nothing kept, clerk of BER": cold(frozenset({"BER"})),
            "stock card, unchanged (manager)": lambda: dashboard.stock_summary(db, warehouses=None),
        }
        for name, card in dashboard.CARDS.items():
            figures[f"card {name}, unchanged (manager)"] = (
                lambda card=card: card.data(db, manager, settings)  # type: ignore[misc]
            )
        figures["whole dashboard, unchanged (manager)"] = lambda: [
            card.data(db, manager, settings) for card in dashboard.CARDS.values()
        ]
        figures["whole dashboard, unchanged (clerk of BER)"] = lambda: [
            card.data(db, clerk, settings) for card in dashboard.CARDS.values()
        ]
        print(f"{args.backend}: median of {RUNS} runs")
        for name, read in figures.items():
            print(f"  {name:55s} {_median_ms(read):8.1f} ms")
        after = _median_ms(
            lambda: dashboard.stock_summary(db, warehouses=None), before=a_movement_in_berlin
        )
        print(f"  {'stock card, after a movement in BER (manager)':55s} {after:8.1f} ms")


if __name__ == "__main__":
    main()
