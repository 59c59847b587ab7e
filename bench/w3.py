"""W3 sync-initial: a fresh ``storekeeper_client.Replica`` pulls 100k products + their stock.

The server (``storekeeper serve``) holds N products (``--w3-products``, default 100k) and one
stock row of each in BER, bulk-inserted. A device token bound to ``warehouse:BER`` is issued
through ``POST /api/v1/devices`` by an admin. Then a fresh replica file syncs from nothing,
with the server's largest page (5000).

Floor ("ceiling" in time) in the same run, in turns with the replica (A B B A, means): the
same pages fetched by a bare httpx loop (JSON decoding only, to follow the cursor), plus one
transaction of ``executemany`` of the same rows into a fresh SQLite file with the replica's
tables and pragmas. Ratio = replica seconds / floor seconds (goal <= 2).
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import httpx
from sqlalchemy import Table, func, insert, select

from bench import infra, report, schedule, seed
from bench.infra import BenchDatabase, Server
from bench.options import Options, environment
from storekeeper.accounts import security
from storekeeper.accounts.domain import Role
from storekeeper.accounts.keys import Keyring
from storekeeper.accounts.models import AuthSession, User
from storekeeper.catalog.models import Product
from storekeeper.db import Database, utcnow
from storekeeper.inventory.models import StockLevel
from storekeeper_client import Replica

PRODUCTS = 100_000
PAGE_SIZE = 5000
"""The server's largest pull page (``storekeeper.sync.feed.MAX_LIMIT``)."""
WAREHOUSE = "BER"
SCOPE = f"warehouse:{WAREHOUSE}"
GOAL = 2.0
"""Replica time / floor time at most this."""
POWERSYNC_ROWS_PER_S = 27_600
"""PowerSync's published desktop initial-sync figure, for comparison only."""
UNITS = 1000
_BATCH = 2000
_API = "/api/v1"
_REPLICA_SCHEMA = (
    "CREATE TABLE product (sku TEXT PRIMARY KEY, data TEXT NOT NULL, version INTEGER NOT NULL)",
    "CREATE TABLE stock (sku TEXT PRIMARY KEY, data TEXT NOT NULL, version INTEGER NOT NULL)",
)


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


# --- helpers shared with W4 ----------------------------------------------------------------------


def admin_token(db: Database, signing_key: Keyring) -> str:
    """An admin account with a sign-in session, and an access token for it."""
    user_id, session_id = uuid.uuid4(), uuid.uuid4()
    with db.transaction() as session:
        session.execute(
            insert(_table(User)),
            [
                {
                    "id": user_id,
                    "email": f"bench-admin-{user_id.hex[:8]}@example.com",
                    "password_hash": security.hash_password("bench-admin-password"),
                    "role": Role.ADMIN.value,
                    "is_active": True,
                    "created_at": utcnow(),
                }
            ],
        )
        session.execute(
            insert(_table(AuthSession)),
            [
                {
                    "id": session_id,
                    "user_id": user_id,
                    "kind": "login",
                    "created_at": utcnow(),
                    "expires_at": utcnow() + timedelta(hours=6),
                }
            ],
        )
    return security.issue_token(
        key=signing_key,
        user_id=user_id,
        session_id=session_id,
        token_type="access",
        ttl=timedelta(hours=6),
    )


def device_token(server: Server, admin: str, *, label: str, scope: str) -> str:
    """A device token bound to ``scope``, issued by the real server (``POST /devices``)."""
    response = httpx.post(
        f"{server.url}{_API}/devices",
        json={"label": label, "scope": scope},
        headers={"Authorization": f"Bearer {admin}"},
        timeout=30,
    )
    if response.status_code != 201:
        raise RuntimeError(f"POST /devices: {response.status_code} {response.text[:300]}")
    return str(response.json()["token"])


def serve_app(db: BenchDatabase, opts: Options, name: str) -> Any:
    """``storekeeper serve`` on ``db`` (a context manager yielding the ``Server``)."""
    port = infra.free_port()
    return infra.serve(
        infra.storekeeper_command(port, opts.workers),
        port=port,
        env=infra.server_env(db),
        workdir=opts.workdir,
        name=name,
    )


# --- W3 ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pull:
    """One full initial pull."""

    seconds: float
    rows: int
    bytes: int
    pages: int
    download_s: float = 0.0
    insert_s: float = 0.0

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "rows": self.rows,
            "rows_per_s": round(self.rows_per_s, 1),
            "bytes": self.bytes,
            "pages": self.pages,
            **(
                {"download_s": round(self.download_s, 3), "insert_s": round(self.insert_s, 3)}
                if self.download_s
                else {}
            ),
        }


def replica_pull(server: Server, token: str, path: Path) -> tuple[Pull, dict[str, int]]:
    """A fresh replica file pulls everything; the rows it then holds per table (W3, W7)."""
    counted = {"bytes": 0, "pages": 0}

    def on_response(response: httpx.Response) -> None:
        response.read()
        counted["bytes"] += len(response.content)
        counted["pages"] += 1

    with Replica(path, server.url, token, scope=SCOPE, page_size=PAGE_SIZE) as replica:
        # The replica's own httpx client, observed: count the bytes it downloads.
        http = replica._http
        if http is not None:
            http.event_hooks = {"request": [], "response": [on_response]}
        started = time.perf_counter()
        summary = replica.sync()
        seconds = time.perf_counter() - started
    with sqlite3.connect(path) as conn:
        held = {
            table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            for table in ("product", "stock")
        }
    conn.close()
    return Pull(seconds, summary.pulled, counted["bytes"], counted["pages"]), held


def _floor_pull(server: Server, token: str, path: Path) -> tuple[Pull, dict[str, int]]:
    """The same pages by a bare httpx loop, then the same rows in one executemany transaction."""
    pages: list[list[dict[str, Any]]] = []
    size = 0
    headers = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
        params: dict[str, Any] = {"scope": SCOPE, "limit": PAGE_SIZE}
        while True:
            response = http.get(f"{_API}/sync/pull", params=params)
            response.raise_for_status()
            size += len(response.content)
            page = response.json()
            pages.append(page["changes"])
            params["since"] = page["cursor"]
            if not page["has_more"]:
                break
    download_s = time.perf_counter() - started
    rows: dict[str, list[tuple[str, str, int]]] = {"product": [], "stock": []}
    for changes in pages:
        for change in changes:
            rows[change["entity"]].append(
                (change["key"], json.dumps(change["data"]), int(change["version"]))
            )
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # as the replica's file
        for statement in _REPLICA_SCHEMA:
            conn.execute(statement)
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        for table, values in rows.items():
            conn.executemany(
                f"INSERT INTO {table} (sku, data, version) VALUES (?, ?, ?)",
                values,
            )
        conn.execute("COMMIT")
        insert_s = time.perf_counter() - started
        held = {
            table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            for table in ("product", "stock")
        }
    finally:
        conn.close()
    total = sum(len(c) for c in pages)
    return Pull(download_s + insert_s, total, size, len(pages), download_s, insert_s), held


def _mean(runs: list[Pull]) -> Pull:
    """The runs of one side as one: mean seconds, the rows and bytes of one pull."""
    n = len(runs)
    return Pull(
        sum(r.seconds for r in runs) / n,
        runs[0].rows,
        runs[0].bytes,
        runs[0].pages,
        sum(r.download_s for r in runs) / n,
        sum(r.insert_s for r in runs) / n,
    )


def seed_pull_data(db: BenchDatabase, products: int) -> tuple[str, dict[str, int]]:
    """Products + BER stock, bulk-inserted; an admin token and the rows a pull must bring."""
    with infra.container_for(db) as container:
        started = time.perf_counter()
        skus = seed.seed_products(container.db, count=products)
        seed.seed_warehouses(container.db)
        seed.seed_stock(container.db, skus=skus, units=UNITS, codes=[WAREHOUSE])
        print(f"  seeded {products} products + stock in {time.perf_counter() - started:.1f} s")
        token = admin_token(container.db, container.signing_key)
        with container.db.reading() as session:
            expected = {
                "product": int(
                    session.scalar(select(func.count()).select_from(_table(Product))) or 0
                ),
                "stock": int(
                    session.scalar(
                        select(func.count())
                        .select_from(_table(StockLevel))
                        .where(_table(StockLevel).c.warehouse_code == WAREHOUSE)
                    )
                    or 0
                ),
            }
    return token, expected


def run(backend: str, opts: Options, *, products: int = PRODUCTS) -> tuple[dict[str, Any], bool]:
    """Run W3 on ``backend``; returns the results document and whether the run was clean."""
    report.heading(f"W3 sync-initial on {backend} ({products} products)")
    busy = schedule.background_busy()
    schedule.warn_if_busy(busy)
    problems: list[str] = []
    with infra.fresh_database(backend, "w3", opts.workdir) as db:
        admin, expected = seed_pull_data(db, products)
        with serve_app(db, opts, f"W3-{backend}-app") as server:
            token = device_token(server, admin, label="w3-replica", scope=SCOPE)
            # A B B A: replica, floor, floor, replica, each into a fresh file.
            replica_runs, floor_runs = [], []
            held: list[tuple[str, dict[str, int]]] = []
            for i, side in enumerate(("replica", "floor", "floor", "replica")):
                pull = replica_pull if side == "replica" else _floor_pull
                # Named per backend and removed first: a file left by an earlier run (the
                # SQLite run before the PostgreSQL one) must not be synced into.
                path = opts.workdir / f"w3-{backend}-{side}-{i}.db"
                for suffix in ("", "-wal", "-shm"):
                    stale = path.with_name(path.name + suffix)
                    stale.unlink(missing_ok=True)
                done, holds = pull(server, token, path)
                (replica_runs if side == "replica" else floor_runs).append(done)
                held.append((side, holds))
    replica, floor = _mean(replica_runs), _mean(floor_runs)
    replica_held = held[0][1]
    for label, holds in held:
        if holds != expected:
            problems.append(f"{label} holds {holds}, the server has {expected}")
    value = replica.seconds / floor.seconds if floor.seconds else 0.0
    report.line(
        "replica (Replica.sync)",
        f"{replica.seconds:8.2f} s  {replica.rows_per_s:9.0f} rows/s  "
        f"{replica.rows} rows  {replica.bytes / 1e6:7.1f} MB  {replica.pages} pages",
    )
    report.line(
        "floor (httpx + executemany)",
        f"{floor.seconds:8.2f} s  {floor.rows_per_s:9.0f} rows/s  "
        f"(download {floor.download_s:.2f} s + insert {floor.insert_s:.2f} s)  "
        f"{floor.bytes / 1e6:7.1f} MB",
    )
    report.line(
        "ratio replica / floor",
        f"{value:.2f} (goal <= {GOAL:.2f}: {'met' if value <= GOAL else 'NOT met'})",
    )
    report.line(
        "vs PowerSync 27.6k rows/s",
        f"{replica.rows_per_s / POWERSYNC_ROWS_PER_S:.2f}x ({replica.rows_per_s:.0f} rows/s)",
    )
    report.line("replica holds every row", "yes" if all(h == expected for _, h in held) else "NO")
    for problem in problems:
        print(f"  NOT CLEAN: {problem}", flush=True)
    clean = not problems
    document = {
        "workload": "W3",
        "name": "sync-initial",
        "backend": backend,
        "figures": replica.to_json(),
        "ceiling": floor.to_json(),
        "ratio": round(value, 3),
        "ratio_meaning": "replica seconds / floor seconds (lower is better)",
        "goal": GOAL,
        "goal_met": value <= GOAL,
        "powersync_rows_per_s": POWERSYNC_ROWS_PER_S,
        "vs_powersync": round(replica.rows_per_s / POWERSYNC_ROWS_PER_S, 3),
        "expected_rows": expected,
        "replica_holds": replica_held,
        "runs": {
            "replica": [r.to_json() for r in replica_runs],
            "floor": [r.to_json() for r in floor_runs],
        },
        "clean": clean,
        "problems": problems,
        "setup": {
            "products": products,
            "warehouse": WAREHOUSE,
            "page_size": PAGE_SIZE,
            "workers": opts.workers,
            "token": "device token bound to warehouse:BER (POST /api/v1/devices)",
            "ceiling": "the same pages by a bare httpx loop (json decoding only), then the "
            "same rows (sku, json, version) inserted into a fresh SQLite file (WAL, "
            "synchronous=FULL, as the replica's) with executemany in one transaction; "
            "replica and floor pull in turns A B B A on the same server, means reported",
        },
        "environment": environment(busy),
    }
    return document, clean
