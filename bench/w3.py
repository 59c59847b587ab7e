"""W3 sync-initial: a fresh ``storekeeper_client.Replica`` syncs 100k products + their stock.

The server (``storekeeper serve``) holds N products (``--w3-products``, default 100k) and one
stock row of each in BER, bulk-inserted. A device token bound to ``warehouse:BER`` is issued
through ``POST /api/v1/devices`` by an admin. Then a fresh replica file syncs from nothing: it
downloads the server's snapshot of the scope (``GET /sync/snapshot``), stores it, and pulls the
feed from the snapshot's cursor (docs/sync.md).

*Cold*: the server builds the snapshot for this request (a server process just started, so its
cache is empty); *warm*: the same server again, serving its cached snapshot. The goal is judged
on cold runs.

Floor, in the same run, in turns with the cold replica (A B B A, means), and honest: what any
initial sync of these rows must at least do here, with nothing of Storekeeper in between:

1. read the same rows from the server's database through the raw driver (sqlite3 / psycopg):
   the products on sale with their columns (attributes as text, not decoded), their barcodes,
   BER's stock rows;
2. move the bytes the replica downloaded (the gzip'd snapshot) over a loopback TCP socket;
3. insert the rows the replica stores (product, stock, barcode: its tables and pragmas, a fresh
   file) with one ``executemany`` per table in one transaction.

Ratio = replica seconds / floor seconds (goal <= 2), and rows/s (goal >= 150k, cold). For
comparison, one more sync of the same data page by page (``use_snapshot=False``, the path of
servers without snapshots and of W3 before them) on the same server.
"""

from __future__ import annotations

import gzip
import socket
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import psycopg
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
from storekeeper_client import snapshot as client_snapshot

PRODUCTS = 100_000
PAGE_SIZE = 5000
"""The server's largest pull page (``storekeeper.sync.feed.MAX_LIMIT``): the paged reference,
and the feed after the snapshot."""
WAREHOUSE = "BER"
SCOPE = f"warehouse:{WAREHOUSE}"
GOAL = 2.0
"""Replica time / floor time at most this."""
GOAL_ROWS_PER_S = 150_000
"""Cold replica rows per second at least this."""
POWERSYNC_ROWS_PER_S = 27_600
"""PowerSync's published desktop initial-sync figure, for comparison only."""
UNITS = 1000
_BATCH = 2000
_API = "/api/v1"
_REPLICA_SCHEMA = (
    "CREATE TABLE product (sku TEXT PRIMARY KEY, data TEXT NOT NULL, version INTEGER NOT NULL)",
    "CREATE TABLE stock (sku TEXT PRIMARY KEY, data TEXT NOT NULL, version INTEGER NOT NULL)",
    "CREATE TABLE barcode (code TEXT PRIMARY KEY, sku TEXT NOT NULL)",
    "CREATE INDEX barcode_sku ON barcode (sku)",
)
# The floor's read: the same rows as the snapshot, the cheapest way (no JSON built or decoded).
_FLOOR_READS = {
    "sqlite": (
        "SELECT sku, name, price_cents, currency, attributes, min_temp_c, max_temp_c, version, "
        "hlc FROM catalog_product WHERE archived_at IS NULL ORDER BY sku",
        "SELECT b.code, b.sku FROM catalog_barcode b JOIN catalog_product p ON p.sku = b.sku "
        "WHERE p.archived_at IS NULL",
        "SELECT sku, on_hand, reserved, version FROM inventory_stock "
        f"WHERE warehouse_code = '{WAREHOUSE}' ORDER BY sku",
    ),
    "postgresql": (
        "SELECT sku, name, price_cents, currency, attributes::text, min_temp_c, max_temp_c, "
        "version, hlc FROM catalog_product WHERE archived_at IS NULL ORDER BY sku",
        "SELECT b.code, b.sku FROM catalog_barcode b JOIN catalog_product p ON p.sku = b.sku "
        "WHERE p.archived_at IS NULL",
        "SELECT sku, on_hand, reserved, version FROM inventory_stock "
        f"WHERE warehouse_code = '{WAREHOUSE}' ORDER BY sku",
    ),
}


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
    """One full initial sync (or one floor run: its three parts)."""

    seconds: float
    rows: int
    bytes: int
    requests: int
    read_s: float = 0.0
    wire_s: float = 0.0
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
            "requests": self.requests,
            **(
                {
                    "read_s": round(self.read_s, 3),
                    "wire_s": round(self.wire_s, 3),
                    "insert_s": round(self.insert_s, 3),
                }
                if self.insert_s
                else {}
            ),
        }


def replica_pull(
    server: Server, token: str, path: Path, *, use_snapshot: bool = True
) -> tuple[Pull, dict[str, int]]:
    """A fresh replica file syncs everything; the rows it then holds per table (W3, W7)."""
    counted = {"bytes": 0, "requests": 0}

    def on_response(response: httpx.Response) -> None:
        # Bytes on the wire (gzip'd if the server compressed), not decoded.
        counted["bytes"] += int(response.headers.get("content-length", 0))
        counted["requests"] += 1

    with Replica(
        path, server.url, token, scope=SCOPE, page_size=PAGE_SIZE, use_snapshot=use_snapshot
    ) as replica:
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
    return Pull(seconds, summary.pulled, counted["bytes"], counted["requests"]), held


@dataclass(frozen=True, slots=True)
class Downloaded:
    """The snapshot as the replica downloads it: its bytes on the wire, and its rows."""

    wire: bytes
    rows: client_snapshot.Snapshot


def download_snapshot(server: Server, token: str) -> Downloaded:
    """The server's snapshot of BER (not timed): what the floor moves and inserts."""
    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"}
    with (
        httpx.Client(base_url=server.url, headers=headers, timeout=120) as http,
        http.stream("GET", f"{_API}/sync/snapshot", params={"scope": SCOPE}) as response,
    ):
        response.raise_for_status()
        wire = b"".join(response.iter_raw())  # as sent: gzip'd, not decoded
    parsed = client_snapshot.parse(gzip.decompress(wire))
    if parsed is None:
        raise RuntimeError("the server answered a snapshot format this client does not know")
    return Downloaded(wire, parsed)


def _floor_read(db: BenchDatabase) -> tuple[float, int]:
    """The same rows from the server's database through the raw driver: seconds, rows."""
    queries = _FLOOR_READS[db.backend]
    started = time.perf_counter()
    if db.backend == "sqlite":
        conn = sqlite3.connect(db.driver_target)
        try:
            counts = [len(conn.execute(sql).fetchall()) for sql in queries]
        finally:
            conn.close()
    else:
        with psycopg.connect(db.driver_target) as pg, pg.cursor() as cursor:
            counts = []
            for sql in queries:
                cursor.execute(sql)
                counts.append(len(cursor.fetchall()))
    return time.perf_counter() - started, counts[0] + counts[2]


def _floor_wire(payload: bytes) -> float:
    """Seconds to move ``payload`` from one socket to another over loopback TCP."""
    with socket.create_server((infra.LOOPBACK, 0)) as listener:
        sender = socket.create_connection(listener.getsockname())
        receiver, _ = listener.accept()
        with sender, receiver:
            started = time.perf_counter()
            thread = threading.Thread(target=sender.sendall, args=(payload,))
            thread.start()
            left = len(payload)
            while left:
                chunk = receiver.recv(1 << 20)
                if not chunk:
                    raise RuntimeError("loopback socket closed early")
                left -= len(chunk)
            seconds = time.perf_counter() - started
            thread.join()
    return seconds


def _floor_insert(rows: client_snapshot.Snapshot, path: Path) -> tuple[float, dict[str, int]]:
    """The replica's rows into a fresh file with its tables and pragmas, one executemany per
    table in one transaction: seconds, and the rows held."""
    # Materialized before the clock starts: the floor inserts ready tuples.
    values = {table: list(rows.rows(table)) for table in ("product", "stock", "barcode")}
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # as the replica's file
        for statement in _REPLICA_SCHEMA:
            conn.execute(statement)
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        for table, sql in (
            ("product", "INSERT INTO product (sku, version, data) VALUES (?, ?, ?)"),
            ("stock", "INSERT INTO stock (sku, version, data) VALUES (?, ?, ?)"),
            ("barcode", "INSERT INTO barcode (code, sku) VALUES (?, ?)"),
        ):
            conn.executemany(sql, values[table])
        conn.execute("COMMIT")
        seconds = time.perf_counter() - started
        held = {
            table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            for table in ("product", "stock")
        }
    finally:
        conn.close()
    return seconds, held


def floor_pull(
    db: BenchDatabase, downloaded: Downloaded, path: Path
) -> tuple[Pull, dict[str, int]]:
    """The floor: read + wire + insert, each timed on its own (nothing overlaps)."""
    read_s, rows = _floor_read(db)
    wire_s = _floor_wire(downloaded.wire)
    insert_s, held = _floor_insert(downloaded.rows, path)
    seconds = read_s + wire_s + insert_s
    return Pull(seconds, rows, len(downloaded.wire), 0, read_s, wire_s, insert_s), held


def _mean(runs: list[Pull]) -> Pull:
    """The runs of one side as one: mean seconds, the rows and bytes of one pull."""
    n = len(runs)
    return Pull(
        sum(r.seconds for r in runs) / n,
        runs[0].rows,
        runs[0].bytes,
        runs[0].requests,
        sum(r.read_s for r in runs) / n,
        sum(r.wire_s for r in runs) / n,
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


def _warm_up(server: Server, token: str) -> None:
    """One small pull, not timed: a server process's first request pays for lazy imports and
    its first connections, which is not what "cold" measures (an empty snapshot cache)."""
    response = httpx.get(
        f"{server.url}{_API}/sync/pull",
        params={"scope": SCOPE, "limit": 1},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    response.raise_for_status()


def _fresh(path: Path) -> Path:
    # Named per backend and removed first: a file left by an earlier run (the SQLite run before
    # the PostgreSQL one) must not be synced into.
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    return path


def run(backend: str, opts: Options, *, products: int = PRODUCTS) -> tuple[dict[str, Any], bool]:
    """Run W3 on ``backend``; returns the results document and whether the run was clean."""
    report.heading(f"W3 sync-initial on {backend} ({products} products)")
    busy = schedule.background_busy()
    schedule.warn_if_busy(busy)
    problems: list[str] = []
    held: list[tuple[str, dict[str, int]]] = []
    cold_runs: list[Pull] = []
    floor_runs: list[Pull] = []
    work = opts.workdir
    with infra.fresh_database(backend, "w3", opts.workdir) as db:
        admin, expected = seed_pull_data(db, products)
        # A B B A: cold replica (a server just started: its snapshot cache is empty), floor,
        # floor, cold replica on a second fresh server; then that server warm, and paged.
        with serve_app(db, opts, f"W3-{backend}-app-1") as server:
            token = device_token(server, admin, label="w3-replica", scope=SCOPE)
            _warm_up(server, token)
            done, holds = replica_pull(server, token, _fresh(work / f"w3-{backend}-cold-0.db"))
            cold_runs.append(done)
            held.append(("cold replica", holds))
            downloaded = download_snapshot(server, token)
        for i in (1, 2):
            done, holds = floor_pull(db, downloaded, _fresh(work / f"w3-{backend}-floor-{i}.db"))
            floor_runs.append(done)
            held.append(("floor", holds))
        with serve_app(db, opts, f"W3-{backend}-app-2") as server:
            _warm_up(server, token)
            done, holds = replica_pull(server, token, _fresh(work / f"w3-{backend}-cold-3.db"))
            cold_runs.append(done)
            held.append(("cold replica", holds))
            warm, holds = replica_pull(server, token, _fresh(work / f"w3-{backend}-warm.db"))
            held.append(("warm replica", holds))
            paged, holds = replica_pull(
                server, token, _fresh(work / f"w3-{backend}-paged.db"), use_snapshot=False
            )
            held.append(("paged replica", holds))
    cold, floor = _mean(cold_runs), _mean(floor_runs)
    for label, holds in held:
        if holds != expected:
            problems.append(f"{label} holds {holds}, the server has {expected}")
    value = cold.seconds / floor.seconds if floor.seconds else 0.0
    warm_ratio = warm.seconds / floor.seconds if floor.seconds else 0.0
    met = value <= GOAL and cold.rows_per_s >= GOAL_ROWS_PER_S
    report.line(
        "cold replica (Replica.sync)",
        f"{cold.seconds:8.2f} s  {cold.rows_per_s:9.0f} rows/s  "
        f"{cold.rows} rows  {cold.bytes / 1e6:7.1f} MB  {cold.requests} requests",
    )
    report.line(
        "warm replica (cached)",
        f"{warm.seconds:8.2f} s  {warm.rows_per_s:9.0f} rows/s",
    )
    report.line(
        "floor (read + wire + insert)",
        f"{floor.seconds:8.2f} s  {floor.rows_per_s:9.0f} rows/s  "
        f"(read {floor.read_s:.2f} s + wire {floor.wire_s:.3f} s + insert {floor.insert_s:.2f} s)",
    )
    report.line(
        "ratio cold replica / floor",
        f"{value:.2f} (goal <= {GOAL:.2f} and >= {GOAL_ROWS_PER_S / 1000:.0f}k rows/s: "
        f"{'met' if met else 'NOT met'}); warm {warm_ratio:.2f}",
    )
    report.line(
        "paged pull (no snapshot)",
        f"{paged.seconds:8.2f} s  {paged.rows_per_s:9.0f} rows/s  "
        f"{paged.bytes / 1e6:7.1f} MB  {paged.requests} requests; "
        f"cold snapshot {paged.seconds / cold.seconds:.1f}x faster",
    )
    report.line(
        "vs PowerSync 27.6k rows/s",
        f"{cold.rows_per_s / POWERSYNC_ROWS_PER_S:.2f}x ({cold.rows_per_s:.0f} rows/s)",
    )
    report.line("replicas hold every row", "yes" if all(h == expected for _, h in held) else "NO")
    for problem in problems:
        print(f"  NOT CLEAN: {problem}", flush=True)
    clean = not problems
    document = {
        "workload": "W3",
        "name": "sync-initial",
        "backend": backend,
        "figures": cold.to_json(),
        "warm": warm.to_json(),
        "paged": paged.to_json(),
        "ceiling": floor.to_json(),
        "ratio": round(value, 3),
        "ratio_meaning": "cold replica seconds / floor seconds (lower is better)",
        "warm_ratio": round(warm_ratio, 3),
        "goal": GOAL,
        "goal_rows_per_s": GOAL_ROWS_PER_S,
        "goal_met": met,
        "powersync_rows_per_s": POWERSYNC_ROWS_PER_S,
        "vs_powersync": round(cold.rows_per_s / POWERSYNC_ROWS_PER_S, 3),
        "expected_rows": expected,
        "replica_holds": held[0][1],
        "runs": {
            "cold": [r.to_json() for r in cold_runs],
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
            "replica": "a fresh Replica file syncs: GET /sync/snapshot (gzip), one transaction "
            "of executemany, then pulls from the snapshot's cursor; cold = on a server process "
            "just started (the snapshot is built for it), warm = the same server again (cached)",
            "ceiling": "floor = the same rows read from the server's database through the raw "
            "driver (attributes as text) + the snapshot's gzip'd bytes moved over a loopback "
            "TCP socket + the replica's rows inserted into a fresh SQLite file (WAL, "
            "synchronous=FULL, the replica's tables) with one executemany per table in one "
            "transaction, each part timed on its own; cold replica and floor in turns "
            "A B B A, means",
        },
        "environment": environment(busy),
    }
    return document, clean
