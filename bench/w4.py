"""W4 sync-merge: 20 replicas x 500 offline mutations each, then all sync at once.

Setup: PRODUCTS products with UNITS on hand each in BER (bulk-inserted), 20 device tokens bound
to ``warehouse:BER`` (``POST /api/v1/devices``: devices may not edit products, so there are no
product updates), every replica's first pull online. Then, offline (no server URL), each
replica makes 500 mutations on random SKUs: receive (1-5), count (shown on-hand -2..+2, which
the client sends with ``seen_on_hand``), sell (1-3). The files are reopened online and all 20
``sync()`` concurrently, one thread each (a sync is the push, then the catch-up pull). A final
round of ``sync()`` with no new writes follows.

Figures: mutations/s of the concurrent round (10k mutations / its wall time), total seconds,
exceptions raised by ``sync()`` (retried up to 5 times), conflicts/rejections, and converged:
every replica's stock view equals ``GET /api/v1/stock/{sku}`` for BER, no replica has anything
pending, and in the database on-hand equals the sum of the ledger movements of every row.
No ceiling (DESIGN.md section 9).
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from bench import infra, report, schedule, seed
from bench.infra import BenchDatabase, Server
from bench.options import Options, environment
from bench.w3 import (
    SCOPE,
    WAREHOUSE,
    admin_token,
    device_token,
    serve_app,
)
from storekeeper.inventory.models import Movement, StockLevel
from storekeeper.sync.models import SyncException
from storekeeper_client import Replica, SyncError

REPLICAS = 20
MUTATIONS = 500
PRODUCTS = 200
UNITS = 1000
RETRIES = 5
_API = "/api/v1"


def _path(opts: Options, index: int) -> Path:
    return opts.workdir / f"w4-replica-{index:02d}.db"


def random_mutation(replica: Replica, rng: random.Random, skus: list[str]) -> str:
    """One offline mutation of a random SKU in ``skus`` (receive 1-5, count the shown on-hand
    -2..+2, sell 1-3, weighted 3:1:6); its kind. The soak makes the same ones."""
    sku = rng.choice(skus)
    kind = rng.choices(("stock.receive", "stock.count", "stock.sell"), (3, 1, 6))[0]
    if kind == "stock.receive":
        replica.receive(sku, rng.randint(1, 5))
    elif kind == "stock.sell":
        replica.sell(sku, rng.randint(1, 3))
    else:
        shown = replica.stock(sku)
        on_hand = shown.on_hand if shown else 0
        replica.count(sku, max(0, on_hand + rng.randint(-2, 2)))
    return kind


def _offline_work(path: Path, index: int, skus: list[str]) -> dict[str, int]:
    """MUTATIONS mutations on the replica file, with no server: receive, count, sell."""
    rng = random.Random(4000 + index)
    made = {"stock.receive": 0, "stock.count": 0, "stock.sell": 0}
    with Replica(path) as replica:
        for _ in range(MUTATIONS):
            made[random_mutation(replica, rng, skus)] += 1
    return made


def _sync_with_retries(
    path: Path, server: Server, token: str, errors: list[str], lock: threading.Lock
) -> dict[str, int]:
    with Replica(path, server.url, token, scope=SCOPE, page_size=5000) as replica:
        totals = {"pushed": 0, "pulled": 0, "conflicts": 0, "rejected": 0}
        for attempt in range(RETRIES + 1):
            try:
                summary = replica.sync()
            except SyncError as exc:  # Offline is a SyncError too
                with lock:
                    errors.append(f"{path.name} attempt {attempt + 1}: {exc}")
                time.sleep(0.2 * (attempt + 1))
                continue
            totals["pushed"] += summary.pushed
            totals["pulled"] += summary.pulled
            totals["conflicts"] += summary.conflicts
            totals["rejected"] += summary.rejected
            return totals
        raise RuntimeError(f"{path.name}: sync failed {RETRIES + 1} times")


def _round(
    paths: list[Path], server: Server, tokens: list[str], errors: list[str]
) -> tuple[float, list[dict[str, int]]]:
    lock = threading.Lock()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(paths)) as pool:
        futures = [
            pool.submit(_sync_with_retries, path, server, token, errors, lock)
            for path, token in zip(paths, tokens, strict=True)
        ]
        results = [f.result() for f in futures]
    return time.perf_counter() - started, results


def convergence(
    db: BenchDatabase, server: Server, admin: str, paths: list[Path], skus: list[str]
) -> list[str]:
    problems: list[str] = []
    server_view: dict[str, tuple[int, int]] = {}
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {admin}"}, timeout=30
    ) as http:
        for sku in skus:
            response = http.get(f"{_API}/stock/{sku}")
            if response.status_code != 200:
                problems.append(f"GET /stock/{sku}: {response.status_code}")
                continue
            (level,) = [w for w in response.json()["warehouses"] if w["warehouse"] == WAREHOUSE]
            server_view[sku] = (int(level["on_hand"]), int(level["reserved"]))
    for path in paths:
        with Replica(path) as replica:
            if replica.pending():
                problems.append(f"{path.name}: {len(replica.pending())} mutations still pending")
            differing = 0
            for sku in skus:
                stock = replica.stock(sku)
                mine = (stock.on_hand, stock.reserved) if stock else None
                differing += mine != server_view.get(sku)
            if differing:
                problems.append(f"{path.name}: {differing} SKUs differ from the server")
    with infra.container_for(db) as container, container.db.reading() as session:
        ledger = dict(
            session.execute(
                select(Movement.sku, func.sum(Movement.delta))
                .where(Movement.warehouse_code == WAREHOUSE)
                .group_by(Movement.sku)
            ).all()
        )
        levels = dict(
            session.execute(
                select(StockLevel.sku, StockLevel.on_hand).where(
                    StockLevel.warehouse_code == WAREHOUSE
                )
            ).all()
        )
        bad = [s for s, on_hand in levels.items() if int(ledger.get(s) or 0) != on_hand]
        if bad:
            problems.append(f"{len(bad)} stock rows differ from the sum of their movements")
        for sku, (on_hand, _reserved) in server_view.items():
            if levels.get(sku) != on_hand:
                problems.append(f"{sku}: API on-hand {on_hand}, database {levels.get(sku)}")
    return problems


def _database_counts(db: BenchDatabase) -> dict[str, int]:
    with infra.container_for(db) as container, container.db.reading() as session:
        return {
            "sync_movements": int(
                session.scalar(
                    select(func.count())
                    .select_from(Movement)
                    .where(Movement.mutation_id.is_not(None))
                )
                or 0
            ),
            "sync_exceptions": int(
                session.scalar(select(func.count()).select_from(SyncException)) or 0
            ),
        }


def run(backend: str, opts: Options) -> tuple[dict[str, Any], bool]:
    """Run W4 on ``backend``; returns the results document and whether the run was clean."""
    report.heading(f"W4 sync-merge on {backend} ({REPLICAS} replicas x {MUTATIONS} mutations)")
    busy = schedule.background_busy()
    schedule.warn_if_busy(busy)
    paths = [_path(opts, i) for i in range(REPLICAS)]
    errors: list[str] = []
    with infra.fresh_database(backend, "w4", opts.workdir) as db:
        with infra.container_for(db) as container:
            skus = seed.seed_products(container.db, count=PRODUCTS)
            seed.seed_warehouses(container.db)
            seed.seed_stock(container.db, skus=skus, units=UNITS, codes=[WAREHOUSE])
            admin = admin_token(container.db, container.signing_key)
        with serve_app(db, opts, f"W4-{backend}-app") as server:
            tokens = [
                device_token(server, admin, label=f"w4-replica-{i}", scope=SCOPE)
                for i in range(REPLICAS)
            ]
            first_s, _ = _round(paths, server, tokens, errors)  # the first pull, online
            made: dict[str, int] = {}
            for i, path in enumerate(paths):
                for kind, n in _offline_work(path, i, skus).items():
                    made[kind] = made.get(kind, 0) + n
            push_s, pushed = _round(paths, server, tokens, errors)
            final_s, final = _round(paths, server, tokens, errors)
            problems = convergence(db, server, admin, paths, skus)
        counts = _database_counts(db)
    mutations = REPLICAS * MUTATIONS
    total_pushed = sum(r["pushed"] for r in pushed) + sum(r["pushed"] for r in final)
    if total_pushed != mutations:
        problems.append(f"{total_pushed} mutations pushed, {mutations} made")
    if counts["sync_movements"] != mutations:
        problems.append(f"{counts['sync_movements']} sync movements, {mutations} mutations")
    rate = mutations / push_s if push_s else 0.0
    converged = not problems
    conflicts = sum(r["conflicts"] for r in pushed)
    rejected = sum(r["rejected"] for r in pushed)
    report.line(
        "concurrent sync round",
        f"{rate:8.1f} mutations/s   {mutations} mutations in {push_s:.2f} s",
    )
    report.line(
        "total",
        f"{first_s + push_s + final_s:.2f} s (first pull {first_s:.2f} s, "
        f"push round {push_s:.2f} s, final pull {final_s:.2f} s)",
    )
    report.line("verdicts", f"conflicts {conflicts}, rejected {rejected}")
    report.line(
        "exceptions",
        f"raised by sync() {len(errors)}; server sync exceptions {counts['sync_exceptions']}",
    )
    report.line("converged", "yes" if converged else "NO")
    for error in errors[:10]:
        print(f"    sync() raised: {error[:200]}", flush=True)
    for problem in problems[:20]:
        print(f"  NOT CLEAN: {problem}", flush=True)
    document = {
        "workload": "W4",
        "name": "sync-merge",
        "backend": backend,
        "figures": {
            "mutations_per_s": round(rate, 1),
            "push_round_s": round(push_s, 3),
            "first_pull_s": round(first_s, 3),
            "final_pull_s": round(final_s, 3),
            "total_s": round(first_s + push_s + final_s, 3),
            "converged": converged,
            "exceptions_raised": len(errors),
            "server_sync_exceptions": counts["sync_exceptions"],
            "conflicts": conflicts,
            "rejected": rejected,
        },
        "ceiling": None,
        "clean": converged,
        "problems": problems,
        "errors": errors[:50],
        "mutations_made": made,
        "setup": {
            "replicas": REPLICAS,
            "mutations_per_replica": MUTATIONS,
            "products": PRODUCTS,
            "units_per_sku": UNITS,
            "warehouse": WAREHOUSE,
            "workers": opts.workers,
            "concurrency": "one thread per replica in the bench process",
            "tokens": "one device token per replica, bound to warehouse:BER",
            "retries": RETRIES,
            "client_timeout_s": 30.0,
            "client_timeout": "the Replica's default; a push that times out is retried, "
            "and the server answers duplicate for what the first attempt applied",
            "mutations_per_s": "all mutations / wall time of the concurrent sync() round "
            "(push, then each replica's catch-up pull)",
        },
        "environment": environment(busy),
    }
    return document, converged
