"""The statements of one order placement, replayed straight through the driver (W2's ceiling).

The sequence below is what ``POST /api/v1/orders`` issues (captured with an engine event listener,
see ``bench.capture``): claim the idempotency key, price the lines, lock and read the stock rows
with their warehouses' sites (one statement), reserve per allocation (UPDATE ... RETURNING,
reservation row, ``stock.changed`` event), write the order, its lines and the
``order.placed``/``order.confirmed`` events, store the response, commit. No HTTP, no ORM, no
validation: plain sqlite3 or psycopg (``bench.w2_raw`` runs it from 32 threads). Allocation uses
the app's own pure function (``inventory.domain.allocate``), which costs microseconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from storekeeper.inventory import domain
from storekeeper.inventory.domain import Allocation, Point


@dataclass(frozen=True, slots=True)
class Statements:
    """The SQL of one order, in one driver's parameter style."""

    placeholder: str
    select_session: str
    select_key: str
    insert_key: str
    select_prices: str
    select_stock: str
    reserve: str
    insert_reservation: str
    insert_event: str
    insert_order: str
    insert_line: str

    def in_list(self, template: str, count: int) -> str:
        """``template`` with its ``{in}`` list sized for ``count`` values."""
        return template.replace("{in}", ", ".join([self.placeholder] * count))


def statements(backend: str) -> Statements:
    """The order statements for ``sqlite`` (sqlite3) or ``postgresql`` (psycopg)."""
    p = "?" if backend == "sqlite" else "%s"
    js = p if backend == "sqlite" else "%s::jsonb"

    def values(n: int) -> str:
        return ", ".join([p] * n)

    return Statements(
        placeholder=p,
        # What the app's auth dependency reads for every request (session alive, current role).
        select_session="SELECT accounts_user.role, accounts_user.is_active, "
        "accounts_user.warehouses, accounts_session.user_id, accounts_session.kind, "
        "accounts_session.scope, accounts_user.totp_enabled, accounts_session.expires_at, "
        "accounts_session.revoked_at FROM accounts_session JOIN accounts_user ON "
        f"accounts_user.id = accounts_session.user_id WHERE accounts_session.id = {p}",
        select_key='SELECT user_id, "key", request_hash, status_code, response, created_at '
        f'FROM ordering_idempotency WHERE user_id = {p} AND "key" = {p}',
        insert_key='INSERT INTO ordering_idempotency (user_id, "key", request_hash, status_code, '
        f"response, created_at) VALUES ({values(4)}, {js}, {p})",
        select_prices="SELECT sku, price_cents, currency FROM catalog_product "
        "WHERE sku IN ({in}) AND archived_at IS NULL",
        # With the warehouses' sites, as the app reads them (one statement).
        select_stock="SELECT inventory_stock.sku, inventory_stock.warehouse_code, "
        "inventory_stock.on_hand, inventory_stock.reserved, inventory_warehouse.lat, "
        "inventory_warehouse.lon FROM inventory_stock JOIN inventory_warehouse "
        "ON inventory_warehouse.code = inventory_stock.warehouse_code "
        "WHERE inventory_stock.sku IN ({in}) "
        "ORDER BY inventory_stock.sku, inventory_stock.warehouse_code"
        + (" FOR UPDATE OF inventory_stock" if backend == "postgresql" else ""),
        reserve=f"UPDATE inventory_stock SET reserved = reserved + {p}, updated_at = {p} "
        f"WHERE sku = {p} AND warehouse_code = {p} AND on_hand - reserved >= {p} "
        "RETURNING on_hand, reserved",
        insert_reservation="INSERT INTO inventory_reservation (id, ref, sku, warehouse_code, "
        f"qty, status, created_at, updated_at) VALUES ({values(8)})",
        # PostgreSQL rows carry their transaction id, as outbox.record writes them (sync feed).
        insert_event="INSERT INTO events_outbox (event_id, type, aggregate_type, aggregate_id, "
        "payload, occurred_at, published_at"
        + (", xid" if backend == "postgresql" else "")
        + f") VALUES ({values(4)}, {js}, {p}, {p}"
        + (", pg_current_xact_id()::text::bigint" if backend == "postgresql" else "")
        + ")",
        insert_order="INSERT INTO ordering_order (id, customer_id, status, currency, "
        "total_cents, ship_to_lat, ship_to_lon, payment_method, payment_reference, "
        f"cancel_reason, created_at, updated_at) VALUES ({values(12)})",
        insert_line="INSERT INTO ordering_order_line (order_id, sku, qty, warehouse, "
        f"unit_price_cents) VALUES ({values(5)})",
    )


# --- drivers ---------------------------------------------------------------------------------


class _Sqlite:
    """sqlite3 set up as Storekeeper sets it up; BEGIN IMMEDIATE, one writer at a time."""

    backend = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        # The app queues its writers on an in-process lock instead of SQLite's sleeping busy
        # handler; the ceiling does the same, or it would measure the busy handler's back-off.
        self.write_lock: contextlib.AbstractContextManager[Any] = threading.Lock()

    def connect(self) -> Any:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            "busy_timeout=30000",
        ):
            conn.execute(f"PRAGMA {pragma}")
        return conn

    def begin(self, conn: Any) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def commit(self, conn: Any) -> None:
        conn.execute("COMMIT")

    def rollback(self, conn: Any) -> None:
        conn.execute("ROLLBACK")

    @staticmethod
    def uuid(value: uuid.UUID) -> Any:
        return value.hex  # SQLAlchemy's Uuid on SQLite: 32 hex digits

    @staticmethod
    def ts(value: datetime) -> Any:
        return value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


class _Postgres:
    """psycopg 3, one transaction per order (it begins implicitly)."""

    backend = "postgresql"

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.write_lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()

    def connect(self) -> Any:
        return psycopg.connect(self.conninfo)

    def begin(self, conn: Any) -> None:
        """psycopg opens the transaction with the first statement."""

    def commit(self, conn: Any) -> None:
        conn.commit()

    def rollback(self, conn: Any) -> None:
        conn.rollback()

    @staticmethod
    def uuid(value: uuid.UUID) -> Any:
        return value

    @staticmethod
    def ts(value: datetime) -> Any:
        return value


Driver = _Sqlite | _Postgres


def driver_for(backend: str, target: str) -> Driver:
    """The driver adapter for ``backend`` connecting to ``target`` (file path or conninfo)."""
    return _Sqlite(target) if backend == "sqlite" else _Postgres(target)


# --- one order -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RawOrder:
    """An order as a client would send it."""

    customer_id: uuid.UUID
    session_id: uuid.UUID
    key: str
    lines: dict[str, int]
    ship_to: Point


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _response(
    order: RawOrder,
    order_id: uuid.UUID,
    allocations: list[Allocation],
    prices: dict[str, tuple[int, str]],
    now: datetime,
) -> dict[str, Any]:
    """The body the app stores for replays of the idempotency key."""
    return {
        "id": str(order_id),
        "status": "confirmed",
        "customer_id": str(order.customer_id),
        "lines": [
            {
                "sku": a.sku,
                "qty": a.qty,
                "warehouse": a.warehouse,
                "unit_price_cents": prices[a.sku][0],
            }
            for a in allocations
        ],
        "total_cents": sum(a.qty * prices[a.sku][0] for a in allocations),
        "currency": prices[allocations[0].sku][1],
        "ship_to": {"lat": order.ship_to.lat, "lon": order.ship_to.lon},
        "payment": {"method": "manual", "reference": f"manual:{order_id}"},
        "cancel_reason": None,
        "created_at": _iso(now),
        "updated_at": _iso(now),
    }


def _event(kind: str, aggregate: str, aggregate_id: str, payload: dict[str, Any]) -> list[Any]:
    return [uuid.uuid4(), kind, aggregate, aggregate_id, json.dumps(payload)]


class Replay:
    """Places orders with the app's statements through one driver connection."""

    def __init__(self, driver: Driver, sql: Statements, conn: Any) -> None:
        self.driver, self.sql, self.conn = driver, sql, conn

    def place(self, order: RawOrder) -> bool:
        """One order in one transaction; False if refused for lack of stock."""
        cur = self.conn.cursor()  # the token's session, read before the write, as the app does
        cur.execute(self.sql.select_session, (self.driver.uuid(order.session_id),))
        cur.fetchall()
        with self.driver.write_lock:
            self.driver.begin(self.conn)
            try:
                self._place(self.conn.cursor(), order)
            except domain.InsufficientStock:
                self.driver.rollback(self.conn)
                return False
            except BaseException:
                self.driver.rollback(self.conn)
                raise
            self.driver.commit(self.conn)
        return True

    def _place(self, cur: Any, order: RawOrder) -> None:
        d, sql, skus = self.driver, self.sql, sorted(order.lines)
        now, user = datetime.now(UTC), d.uuid(order.customer_id)
        body = json.dumps({"lines": [{"sku": s, "qty": q} for s, q in order.lines.items()]})
        cur.execute(sql.select_key, (user, order.key))
        cur.fetchall()
        cur.execute(sql.in_list(sql.select_prices, len(skus)), skus)
        prices = {s: (price, currency) for s, price, currency in cur.fetchall()}
        cur.execute(sql.in_list(sql.select_stock, len(skus)), skus)
        available: dict[str, dict[str, int]] = {}
        sites: dict[str, Point] = {}
        for s, code, on_hand, reserved, lat, lon in cur.fetchall():
            available.setdefault(s, {})[code] = on_hand - reserved
            sites[code] = Point(lat, lon)
        order_id = uuid.uuid4()
        allocations = domain.allocate(order.lines, available, sites, order.ship_to)
        self._reserve(cur, f"order:{order_id}", allocations, now)
        self._record_order(cur, order, order_id, allocations, prices, now)
        response = _response(order, order_id, allocations, prices, now)
        cur.execute(
            sql.insert_key,
            (
                user,
                order.key,
                hashlib.sha256(body.encode()).hexdigest(),
                201,
                json.dumps(response),
                d.ts(now),
            ),
        )

    def _reserve(self, cur: Any, ref: str, allocations: list[Allocation], now: datetime) -> None:
        d, sql = self.driver, self.sql
        events = []
        for a in allocations:
            cur.execute(sql.reserve, (a.qty, d.ts(now), a.sku, a.warehouse, a.qty))
            on_hand, reserved = cur.fetchall()[0]
            payload = {
                "sku": a.sku,
                "warehouse": a.warehouse,
                "on_hand": on_hand,
                "reserved": reserved,
                "reason": "reserved",
                "ref": ref,
            }
            events.append(_event("stock.changed", "stock", f"{a.sku}@{a.warehouse}", payload))
        cur.executemany(
            sql.insert_reservation,
            [
                (
                    d.uuid(uuid.uuid4()),
                    ref,
                    a.sku,
                    a.warehouse,
                    a.qty,
                    "active",
                    d.ts(now),
                    d.ts(now),
                )
                for a in allocations
            ],
        )
        self._events(cur, events, now)

    def _record_order(
        self,
        cur: Any,
        order: RawOrder,
        order_id: uuid.UUID,
        allocations: list[Allocation],
        prices: dict[str, tuple[int, str]],
        now: datetime,
    ) -> None:
        d, sql = self.driver, self.sql
        total = sum(a.qty * prices[a.sku][0] for a in allocations)
        currency = prices[allocations[0].sku][1]
        summary = {
            "order_id": str(order_id),
            "customer_id": str(order.customer_id),
            "total_cents": total,
            "currency": currency,
        }
        placed = {**summary, "status": "pending_payment"}
        confirmed = {**summary, "status": "confirmed"}
        self._events(
            cur,
            [
                _event("order.placed", "order", str(order_id), placed),
                _event("order.confirmed", "order", str(order_id), confirmed),
            ],
            now,
        )
        reference = f"manual:{order_id}"
        cur.execute(
            sql.insert_order,
            (
                d.uuid(order_id),
                d.uuid(order.customer_id),
                "confirmed",
                currency,
                total,
                order.ship_to.lat,
                order.ship_to.lon,
                "manual",
                reference,
                None,
                d.ts(now),
                d.ts(now),
            ),
        )
        cur.executemany(
            sql.insert_line,
            [(d.uuid(order_id), a.sku, a.qty, a.warehouse, prices[a.sku][0]) for a in allocations],
        )

    def _events(self, cur: Any, events: list[list[Any]], now: datetime) -> None:
        d = self.driver
        cur.executemany(
            self.sql.insert_event, [(d.uuid(e[0]), *e[1:], d.ts(now), None) for e in events]
        )
