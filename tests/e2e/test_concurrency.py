"""Orders never oversell, with real concurrency: many HTTP clients race a real server process.

Every race runs each client on its own thread with its own connection, all released together by
a barrier, against a uvicorn process on SQLite or PostgreSQL. A watcher polls the public stock
endpoint during the race; afterwards the database itself is audited: on-hand equals the ledger,
reserved equals the open orders' lines and the active reservations, nothing is negative.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import func, select

from storekeeper.bootstrap import Container
from storekeeper.inventory import levels as inventory_levels
from storekeeper.inventory.models import Movement, Reservation
from storekeeper.ordering.models import IdempotencyRecord, Order, OrderLine
from tests.conftest import Actor, LiveServer

pytestmark = pytest.mark.live

R = TypeVar("R")

WAREHOUSES = {"BER": (52.52, 13.405), "HAM": (53.551, 9.993), "MUC": (48.137, 11.575)}
BREMEN = {"lat": 53.079, "lon": 8.801}
AUGSBURG = {"lat": 48.366, "lon": 10.898}
POTSDAM = {"lat": 52.391, "lon": 13.064}
DESTINATIONS: list[dict[str, float] | None] = [BREMEN, AUGSBURG, POTSDAM, None]
OPEN_STATUSES = ("pending_payment", "confirmed")
# Generous safety nets against a hung server, never a measure of speed.
HTTP_TIMEOUT = httpx.Timeout(60.0)
BARRIER_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Reply:
    """Status and JSON body of one HTTP answer."""

    status: int
    body: Any


def _send(
    http: httpx.Client,
    method: str,
    path: str,
    headers: dict[str, str],
    body: dict[str, Any] | None = None,
) -> Reply:
    r = http.request(method, path, headers=headers, json=body)
    return Reply(r.status_code, r.json())


def _order_body(
    lines: Sequence[tuple[str, int]], ship_to: dict[str, float] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"lines": [{"sku": sku, "qty": qty} for sku, qty in lines]}
    if ship_to is not None:
        body["ship_to"] = ship_to
    return body


def place(http: httpx.Client, who: Actor, body: dict[str, Any], key: str | None = None) -> Reply:
    """POST /orders with a fresh (or the given) Idempotency-Key."""
    headers = {**who.headers, "Idempotency-Key": key or str(uuid.uuid4())}
    return _send(http, "POST", "/api/v1/orders", headers, body)


def race(base_url: str, tasks: Sequence[Callable[[httpx.Client], R]]) -> list[R]:
    """Run every task on its own thread and connection, all let go at the same instant."""
    barrier = threading.Barrier(len(tasks))

    def run(task: Callable[[httpx.Client], R]) -> R:
        with httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT) as http:
            # Connect before the start line, so that the requests themselves collide.
            http.get("/healthz").raise_for_status()
            barrier.wait(timeout=BARRIER_TIMEOUT_S)
            return task(http)

    with ThreadPoolExecutor(max_workers=len(tasks)) as pool:
        futures = [pool.submit(run, task) for task in tasks]
        return [future.result() for future in futures]


@dataclass
class StockWatcher:
    """Polls ``GET /stock/{sku}`` while a race runs, keeping every answer for inspection."""

    base_url: str
    headers: dict[str, str]
    sku: str
    samples: list[dict[str, Any]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _failure: list[BaseException] = field(default_factory=list)
    _thread: threading.Thread | None = None

    def __enter__(self) -> StockWatcher:
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=BARRIER_TIMEOUT_S)
        if kind is None and self._failure:
            raise self._failure[0]

    def _poll(self) -> None:
        try:
            with httpx.Client(base_url=self.base_url, timeout=HTTP_TIMEOUT) as http:
                while not self._stop.wait(0.002):
                    r = http.get(f"/api/v1/stock/{self.sku}", headers=self.headers)
                    assert r.status_code == 200, r.text
                    self.samples.append(r.json())
        except BaseException as exc:  # reported to the test thread in __exit__
            self._failure.append(exc)

    def assert_never_oversold(self) -> None:
        """Every level seen during the race had 0 <= reserved <= on-hand."""
        assert self.samples, "the watcher saw nothing"
        for sample in self.samples:
            for level in [sample, *sample["warehouses"]]:
                assert level["available"] == level["on_hand"] - level["reserved"], sample
                assert level["available"] >= 0, f"oversold: {sample}"
                assert 0 <= level["reserved"] <= level["on_hand"], sample


# --- shop set-up through the API --------------------------------------------------------------


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    """A client of the live server for set-up and final reads."""
    with httpx.Client(base_url=live_server.url, timeout=HTTP_TIMEOUT) as client:
        yield client


def open_shop(http: httpx.Client, manager: Actor, stock: dict[str, dict[str, int]]) -> None:
    """Create BER, HAM and MUC, and products received as ``stock[sku][warehouse]``."""
    for code, (lat, lon) in WAREHOUSES.items():
        r = http.post(
            "/api/v1/warehouses",
            headers=manager.headers,
            json={"code": code, "name": code, "lat": lat, "lon": lon},
        )
        assert r.status_code == 201, r.text
    for sku, levels in stock.items():
        r = http.post(
            "/api/v1/products",
            headers=manager.headers,
            json={"sku": sku, "name": sku, "price_cents": 100, "currency": "EUR"},
        )
        assert r.status_code == 201, r.text
        for code, qty in levels.items():
            r = http.post(
                "/api/v1/stock/movements",
                headers=manager.headers,
                json={"sku": sku, "warehouse": code, "delta": qty, "reason": "receipt"},
            )
            assert r.status_code == 201, r.text


# --- auditing the books -----------------------------------------------------------------------


@dataclass(frozen=True)
class Books:
    """What the database says about one SKU, per warehouse."""

    on_hand: dict[str, int]
    reserved: dict[str, int]

    @property
    def total_on_hand(self) -> int:
        """On-hand over all warehouses."""
        return sum(self.on_hand.values())

    @property
    def total_reserved(self) -> int:
        """Reserved over all warehouses."""
        return sum(self.reserved.values())


def audit(container: Container, http: httpx.Client, manager: Actor, sku: str) -> Books:
    """Check every stock invariant of ``sku`` in the database and the API; return its levels."""
    with container.db.reading() as session:
        levels = inventory_levels.stock_of(session, sku=sku)
        ledger = inventory_levels.ledger_totals(session, skus=[sku])
        active = {
            code: int(total)
            for code, total in session.execute(
                select(Reservation.warehouse_code, func.sum(Reservation.qty))
                .where(Reservation.sku == sku, Reservation.status == "active")
                .group_by(Reservation.warehouse_code)
            )
        }
        open_lines = {
            code: int(total)
            for code, total in session.execute(
                select(OrderLine.warehouse, func.sum(OrderLine.qty))
                .join(Order, Order.id == OrderLine.order_id)
                .where(OrderLine.sku == sku, Order.status.in_(OPEN_STATUSES))
                .group_by(OrderLine.warehouse)
            )
        }
    for level in levels:
        code = level.warehouse
        assert level.on_hand == ledger.get((sku, code), 0), f"{sku}@{code}: on-hand != ledger"
        assert 0 <= level.reserved <= level.on_hand, f"{sku}@{code}: {level}"
        assert level.reserved == active.get(code, 0), f"{sku}@{code}: reserved != reservations"
        assert level.reserved == open_lines.get(code, 0), f"{sku}@{code}: reserved != open lines"
    assert set(ledger) == {(sku, lv.warehouse) for lv in levels}

    r = http.get(f"/api/v1/stock/{sku}", headers=manager.headers)
    assert r.status_code == 200, r.text
    api = r.json()
    assert {
        w["warehouse"]: (w["on_hand"], w["reserved"], w["available"]) for w in api["warehouses"]
    } == {lv.warehouse: (lv.on_hand, lv.reserved, lv.available) for lv in levels}
    assert api["available"] == api["on_hand"] - api["reserved"] >= 0
    return Books(
        on_hand={lv.warehouse: lv.on_hand for lv in levels},
        reserved={lv.warehouse: lv.reserved for lv in levels},
    )


def assert_refused_for_stock(reply: Reply) -> None:
    """A refusal must be the documented 409, never a server error."""
    assert reply.status == 409, reply
    assert reply.body["code"] == "insufficient_stock", reply


def order_count(container: Container) -> int:
    """Orders in the database."""
    with container.db.reading() as session:
        return int(session.scalar(select(func.count()).select_from(Order)) or 0)


# --- (1) one SKU, one warehouse ---------------------------------------------------------------


def test_concurrent_orders_for_one_sku_never_oversell(
    live_server: LiveServer,
    http: httpx.Client,
    container: Container,
    manager: Actor,
    customer: Actor,
) -> None:
    stock = 40
    open_shop(http, manager, {"HOT": {"BER": stock}})
    clients, orders_each = 24, 4

    def client(n: int) -> Callable[[httpx.Client], list[tuple[int, Reply]]]:
        def orders(h: httpx.Client) -> list[tuple[int, Reply]]:
            wanted = [1 + (n + k) % 3 for k in range(orders_each)]
            return [(q, place(h, customer, _order_body([("HOT", q)]))) for q in wanted]

        return orders

    with StockWatcher(live_server.url, manager.headers, "HOT") as watcher:
        results = race(live_server.url, [client(n) for n in range(clients)])

    replies = [pair for per_client in results for pair in per_client]
    accepted = [(q, r) for q, r in replies if r.status == 201]
    refused = [(q, r) for q, r in replies if r.status != 201]
    for _, reply in refused:
        assert_refused_for_stock(reply)
    for qty, reply in accepted:
        assert reply.body["status"] == "confirmed"
        assert [(ln["sku"], ln["qty"], ln["warehouse"]) for ln in reply.body["lines"]] == [
            ("HOT", qty, "BER")
        ]
    sold = sum(q for q, _ in accepted)
    assert accepted and refused, "the race must both fill and exhaust the stock"
    assert sold <= stock
    assert len({r.body["id"] for _, r in accepted}) == len(accepted)

    books = audit(container, http, manager, "HOT")
    assert books.on_hand == {"BER": stock}
    assert books.reserved == {"BER": sold}
    # Available only shrank during this race: every refusal saw at least what is left now, so
    # no order was refused that the stock could have served (locking is not over-cautious).
    assert stock - sold < min(q for q, _ in refused)
    assert order_count(container) == len(accepted)
    watcher.assert_never_oversold()


# --- (2) a hot SKU over several warehouses, with splits ---------------------------------------


def test_concurrent_orders_for_a_hot_sku_across_warehouses_split_without_overselling(
    live_server: LiveServer,
    http: httpx.Client,
    container: Container,
    manager: Actor,
    customer: Actor,
) -> None:
    per_warehouse = {"BER": 10, "HAM": 10, "MUC": 10}
    open_shop(http, manager, {"HOT": per_warehouse, "COLD": {"BER": 1000}})
    clients = 18
    big = max(per_warehouse.values()) + 2  # no single warehouse can serve it: it must split

    def client(n: int) -> Callable[[httpx.Client], list[tuple[list[tuple[str, int]], Reply]]]:
        # Each client opens with a big order, so the first order served is one that splits.
        wanted = [big] + [1 + (n + k) % 4 for k in range(3)]

        def orders(h: httpx.Client) -> list[tuple[list[tuple[str, int]], Reply]]:
            out = []
            for k, qty in enumerate(wanted):
                lines = [("HOT", qty)] + ([("COLD", 1)] if (n + k) % 2 else [])
                body = _order_body(lines, DESTINATIONS[(n + k) % len(DESTINATIONS)])
                out.append((lines, place(h, customer, body)))
            return out

        return orders

    with StockWatcher(live_server.url, manager.headers, "HOT") as watcher:
        results = race(live_server.url, [client(n) for n in range(clients)])

    replies = [pair for per_client in results for pair in per_client]
    accepted = [(lines, r) for lines, r in replies if r.status == 201]
    refused = [(lines, r) for lines, r in replies if r.status != 201]
    served: Counter[tuple[str, str]] = Counter()
    for _, reply in refused:
        assert_refused_for_stock(reply)
        assert "HOT" in reply.body["detail"]
    for lines, reply in accepted:
        got: defaultdict[str, list[tuple[str, int]]] = defaultdict(list)
        for ln in reply.body["lines"]:
            assert ln["qty"] > 0
            got[ln["sku"]].append((ln["warehouse"], ln["qty"]))
            served[ln["sku"], ln["warehouse"]] += ln["qty"]
        assert {sku: sum(q for _, q in parts) for sku, parts in got.items()} == dict(lines)
        hot = got["HOT"]
        assert len({code for code, _ in hot}) == len(hot), "a warehouse appears twice in a split"
        if dict(lines)["HOT"] == big:
            assert len(hot) >= 2, "an order no single warehouse could serve was not split"
    assert any(dict(lines)["HOT"] == big for lines, _ in accepted), "no split order was served"
    assert refused, "the race must exhaust the hot SKU"

    books = audit(container, http, manager, "HOT")
    assert books.on_hand == per_warehouse
    # What the answers promised is exactly what the warehouses hold back, warehouse by warehouse.
    assert books.reserved == {code: served["HOT", code] for code in per_warehouse}
    assert all(books.reserved[c] <= per_warehouse[c] for c in per_warehouse)
    left = books.total_on_hand - books.total_reserved
    assert left < min(dict(lines)["HOT"] for lines, _ in refused)
    # Refused orders kept nothing of their other lines either: all or nothing.
    cold = audit(container, http, manager, "COLD")
    assert cold.reserved == {"BER": served["COLD", "BER"]}
    assert order_count(container) == len(accepted)
    watcher.assert_never_oversold()


# --- (3) one Idempotency-Key, many senders ----------------------------------------------------


def test_same_idempotency_key_sent_concurrently_creates_exactly_one_order(
    live_server: LiveServer,
    http: httpx.Client,
    container: Container,
    manager: Actor,
    customer: Actor,
) -> None:
    open_shop(http, manager, {"JAM": {"BER": 100}})
    keys = [f"checkout-{uuid.uuid4()}" for _ in range(4)]
    senders_per_key = 5
    body = _order_body([("JAM", 3)], BREMEN)
    # One more key is sent at once with two different bodies: one wins, the rest are refused.
    contested = f"checkout-{uuid.uuid4()}"
    rivals = {2: _order_body([("JAM", 2)]), 5: _order_body([("JAM", 5)])}

    def sender(key: str, order: dict[str, Any]) -> Callable[[httpx.Client], tuple[str, Reply]]:
        return lambda h: (key, place(h, customer, order, key=key))

    tasks = [sender(k, body) for k in keys for _ in range(senders_per_key)]
    tasks += [sender(contested, rivals[qty]) for qty in (2, 5, 2, 5)]
    results = race(live_server.url, tasks)

    by_key: defaultdict[str, list[Reply]] = defaultdict(list)
    for key, reply in results:
        by_key[key].append(reply)
    for key in keys:
        replies = by_key[key]
        assert all(200 <= r.status < 300 for r in replies), (key, replies)
        assert len({r.body["id"] for r in replies}) == 1, f"{key} created several orders"
        assert all(r.body == replies[0].body for r in replies), "a replay differs from the first"
    won = [r for r in by_key[contested] if r.status == 201]
    for reply in by_key[contested]:
        if reply.status != 201:
            assert (reply.status, reply.body["code"]) == (409, "idempotency_key_reused"), reply
    assert len(won) == 2, "exactly the senders of the first body get its answer"
    assert won[0].body == won[1].body
    winner_qty = won[0].body["lines"][0]["qty"]

    assert order_count(container) == len(keys) + 1
    with container.db.reading() as session:
        records = session.scalar(select(func.count()).select_from(IdempotencyRecord))
    assert records == len(keys) + 1
    books = audit(container, http, manager, "JAM")
    assert books.reserved == {"BER": 3 * len(keys) + winner_qty}


# --- (4) cancels, ships, new orders and stock movements all at once ---------------------------


def test_cancels_ships_new_orders_and_movements_racing_keep_stock_consistent(
    live_server: LiveServer,
    http: httpx.Client,
    container: Container,
    manager: Actor,
    customer: Actor,
) -> None:
    initial = 60
    open_shop(http, manager, {"MIX": {"BER": initial}})
    earlier = []
    for _ in range(8):
        reply = place(http, customer, _order_body([("MIX", 2)]))
        assert reply.status == 201, reply
        earlier.append(reply.body["id"])
    contested, cancel_only, ship_only = earlier[:4], earlier[4:6], earlier[6:]

    def cancel(order_id: str) -> Callable[[httpx.Client], tuple[str, str, Reply]]:
        return lambda h: (
            "cancel",
            order_id,
            _send(h, "POST", f"/api/v1/orders/{order_id}/cancel", customer.headers),
        )

    def ship(order_id: str) -> Callable[[httpx.Client], tuple[str, str, Reply]]:
        return lambda h: (
            "ship",
            order_id,
            _send(h, "POST", f"/api/v1/orders/{order_id}/ship", manager.headers),
        )

    def buyer(n: int) -> Callable[[httpx.Client], list[tuple[int, Reply]]]:
        def orders(h: httpx.Client) -> list[tuple[int, Reply]]:
            wanted = [1 + (n + k) % 3 for k in range(3)]
            return [(q, place(h, customer, _order_body([("MIX", q)]))) for q in wanted]

        return orders

    def mover(delta: int, reason: str) -> Callable[[httpx.Client], list[tuple[int, Reply]]]:
        def moves(h: httpx.Client) -> list[tuple[int, Reply]]:
            body = {"sku": "MIX", "warehouse": "BER", "delta": delta, "reason": reason}
            return [
                (delta, _send(h, "POST", "/api/v1/stock/movements", manager.headers, body))
                for _ in range(2)
            ]

        return moves

    status_tasks = [cancel(o) for o in contested + cancel_only] + [
        ship(o) for o in contested + ship_only
    ]
    # Write-offs ask for 80 units, but at most 44 free + 12 cancelled + 20 received = 76 can
    # ever be free: some must be refused as overselling.
    stock_tasks = [mover(-10, "damage") for _ in range(4)] + [mover(5, "receipt") for _ in range(2)]
    buyers = [buyer(n) for n in range(6)]
    tasks: list[Callable[[httpx.Client], Any]] = [*status_tasks, *stock_tasks, *buyers]

    with StockWatcher(live_server.url, manager.headers, "MIX") as watcher:
        results = race(live_server.url, tasks)

    status_results: list[tuple[str, str, Reply]] = results[: len(status_tasks)]
    movements: list[tuple[int, Reply]] = [
        m
        for batch in results[len(status_tasks) : len(status_tasks) + len(stock_tasks)]
        for m in batch
    ]
    new_orders: list[tuple[int, Reply]] = [
        o for batch in results[len(status_tasks) + len(stock_tasks) :] for o in batch
    ]

    winners: dict[str, str] = {}
    for action, order_id, reply in status_results:
        if reply.status == 200:
            assert order_id not in winners, f"{order_id} was both cancelled and shipped"
            winners[order_id] = action
            assert reply.body["status"] == {"cancel": "cancelled", "ship": "shipped"}[action]
        else:
            assert (reply.status, reply.body["code"]) == (409, "invalid_status"), reply
    assert set(winners) == set(earlier), "every earlier order is either cancelled or shipped"
    assert all(winners[o] == "cancel" for o in cancel_only)
    assert all(winners[o] == "ship" for o in ship_only)
    for order_id, action in winners.items():
        r = http.get(f"/api/v1/orders/{order_id}", headers=manager.headers)
        assert r.json()["status"] == {"cancel": "cancelled", "ship": "shipped"}[action]

    for _, reply in movements:
        if reply.status == 201:
            assert reply.body["available"] >= 0
        else:
            assert_refused_for_stock(reply)
    assert any(d < 0 and r.status == 409 for d, r in movements), "no write-off was refused"
    for _, reply in new_orders:
        if reply.status != 201:
            assert_refused_for_stock(reply)

    moved = sum(d for d, r in movements if r.status == 201)
    shipped = 2 * sum(1 for action in winners.values() if action == "ship")
    still_open = sum(q for q, r in new_orders if r.status == 201)
    books = audit(container, http, manager, "MIX")
    assert books.on_hand == {"BER": initial + moved - shipped}
    assert books.reserved == {"BER": still_open}
    with container.db.reading() as session:
        sales = session.scalar(
            select(func.coalesce(func.sum(Movement.delta), 0)).where(
                Movement.sku == "MIX", Movement.reason == "sale"
            )
        )
    assert sales == -shipped
    watcher.assert_never_oversold()


# --- (5) opposite transfers -------------------------------------------------------------------


def test_opposite_transfers_race_without_deadlock_and_conserve_stock(
    live_server: LiveServer,
    http: httpx.Client,
    container: Container,
    manager: Actor,
    customer: Actor,
) -> None:
    start = {"BER": 50, "HAM": 50}
    open_shop(http, manager, {"BOX": start})

    def mover(n: int) -> Callable[[httpx.Client], list[tuple[str, str, int, Reply]]]:
        source, target = ("BER", "HAM") if n % 2 else ("HAM", "BER")

        def transfers(h: httpx.Client) -> list[tuple[str, str, int, Reply]]:
            out = []
            for k in range(5):
                qty = 1 + (n + k) % 4
                body = {"sku": "BOX", "from": source, "to": target, "qty": qty}
                out.append(
                    (
                        source,
                        target,
                        qty,
                        _send(h, "POST", "/api/v1/stock/transfers", manager.headers, body),
                    )
                )
            return out

        return transfers

    def buyer(n: int) -> Callable[[httpx.Client], list[tuple[str, str, int, Reply]]]:
        # Orders lock every stock row of the SKU at once: they must not deadlock with transfers.
        def orders(h: httpx.Client) -> list[tuple[str, str, int, Reply]]:
            body = _order_body([("BOX", 3)], DESTINATIONS[n % len(DESTINATIONS)])
            return [("order", "", 3, place(h, customer, body)) for _ in range(3)]

        return orders

    with StockWatcher(live_server.url, manager.headers, "BOX") as watcher:
        tasks = [mover(n) for n in range(16)] + [buyer(n) for n in range(4)]
        results = race(live_server.url, tasks)

    done = [t for batch in results for t in batch]
    transfers = [(s, t, q, r) for s, t, q, r in done if s != "order"]
    orders = [r for s, _, _, r in done if s == "order"]
    for *_, reply in transfers:
        if reply.status == 201:
            assert reply.body["from"]["available"] >= 0 and reply.body["to"]["available"] >= 0
        else:
            assert_refused_for_stock(reply)  # a deadlock would surface here as a 500
    for reply in orders:
        assert reply.status == 201, reply
    moved = [(s, t, q) for s, t, q, r in transfers if r.status == 201]
    assert moved, "no transfer went through"
    net_into_ber = sum(q if t == "BER" else -q for s, t, q in moved)

    books = audit(container, http, manager, "BOX")
    assert books.total_on_hand == sum(start.values()), "transfers created or destroyed stock"
    assert books.on_hand == {"BER": start["BER"] + net_into_ber, "HAM": start["HAM"] - net_into_ber}
    assert books.total_reserved == 3 * len(orders)
    with container.db.reading() as session:
        legs = session.execute(
            select(Movement.ref, func.count(), func.sum(Movement.delta))
            .where(Movement.sku == "BOX", Movement.reason == "transfer")
            .group_by(Movement.ref)
        ).all()
    assert len(legs) == len(moved)
    assert all(count == 2 and total == 0 for _, count, total in legs), "an unpaired transfer leg"
    watcher.assert_never_oversold()
