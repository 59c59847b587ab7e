"""gRPC ``Reserve`` and HTTP ``POST /orders`` race for the same SKU: together they never oversell.

A uvicorn process serves HTTP and a gRPC server (in the test process) serves gRPC, both against
one SQLite file or PostgreSQL database. Every caller runs on its own thread with its own
connection, all released together by a barrier, asking for more than there is. Afterwards the
database is audited: reserved = units accepted by both APIs = active reservations, reserved never
above on-hand, on-hand unchanged and equal to the ledger, and nothing refused that would have fit.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import grpc
import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from storekeeper.bootstrap import Container
from storekeeper.grpc import server as grpc_server
from storekeeper.grpc.client import InventoryClient, InventoryError
from storekeeper.inventory import levels as inventory_levels
from storekeeper.inventory.models import Reservation, StockLevel
from tests.conftest import Actor, LiveServer
from tests.e2e.test_grpc import token_of
from tests.shop import add_product, add_warehouses

pytestmark = pytest.mark.live

SKU = "RACE-1"
ON_HAND = {"BER": 12, "HAM": 8}
CALLERS_PER_API = 12
# Each API asks for 16 units (12 callers x 4/3 on average), both together for 32 of the 20 on
# hand: someone must be refused, and neither API can take it all, so both must be served.
QTYS = (1, 1, 2)
TIMEOUT_S = 60.0  # a safety net against a hung server, never a measure of speed


@dataclass(frozen=True)
class Outcome:
    """One caller's answer: units it got (0 if refused) and what it asked for."""

    api: str
    asked: int
    got: int


@pytest.fixture
def grpc_target(container: Container) -> Iterator[str]:
    """The gRPC server, with threads for every racing caller at once."""
    running = grpc_server.start(
        db=container.db,
        authenticator=container.authenticator,
        host="127.0.0.1",
        port=0,
        threads=CALLERS_PER_API,
    )
    yield f"127.0.0.1:{running.port}"
    running.stop(grace_s=1)


def _grpc_reserve(target: str, token: str, qty: int) -> Callable[[threading.Barrier], Outcome]:
    def call(barrier: threading.Barrier) -> Outcome:
        with InventoryClient(target, token, timeout_s=TIMEOUT_S) as inventory:
            inventory.get_stock(SKU)  # connect before the start line
            barrier.wait(timeout=TIMEOUT_S)
            try:
                done = inventory.reserve(f"race-{uuid.uuid4()}", {SKU: qty})
            except InventoryError as exc:
                assert exc.status is grpc.StatusCode.FAILED_PRECONDITION, exc
                assert exc.code == "insufficient_stock", exc
                return Outcome("grpc", qty, 0)
        assert sum(a.qty for a in done.allocations) == qty
        return Outcome("grpc", qty, qty)

    return call


def _http_order(base_url: str, buyer: Actor, qty: int) -> Callable[[threading.Barrier], Outcome]:
    def call(barrier: threading.Barrier) -> Outcome:
        with httpx.Client(base_url=base_url, timeout=TIMEOUT_S) as http:
            http.get("/healthz").raise_for_status()
            barrier.wait(timeout=TIMEOUT_S)
            r = http.post(
                "/api/v1/orders",
                headers={**buyer.headers, "Idempotency-Key": str(uuid.uuid4())},
                json={"lines": [{"sku": SKU, "qty": qty}]},
            )
        if r.status_code == 409:
            assert r.json()["code"] == "insufficient_stock", r.text
            return Outcome("http", qty, 0)
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "confirmed", r.text
        return Outcome("http", qty, qty)

    return call


def test_grpc_and_http_never_oversell_together(
    container: Container,
    client: TestClient,
    live_server: LiveServer,
    grpc_target: str,
    manager: Actor,
    customer: Actor,
) -> None:
    add_warehouses(client, manager.headers)
    add_product(client, manager.headers, SKU, stock=ON_HAND)
    callers = [
        maker
        for i in range(CALLERS_PER_API)
        for maker in (
            _grpc_reserve(grpc_target, token_of(manager), QTYS[i % len(QTYS)]),
            _http_order(live_server.url, customer, QTYS[(i + 1) % len(QTYS)]),
        )
    ]
    barrier = threading.Barrier(len(callers))
    with ThreadPoolExecutor(max_workers=len(callers)) as pool:
        outcomes = list(pool.map(lambda call: call(barrier), callers))

    accepted = sum(o.got for o in outcomes)
    refused = [o.asked for o in outcomes if not o.got]
    assert {o.api for o in outcomes if o.got} == {"grpc", "http"}, outcomes  # both APIs served
    assert refused, "demand exceeded stock, so someone must have been refused"
    with container.db.reading() as session:
        rows = {
            r.warehouse_code: r
            for r in session.scalars(select(StockLevel).where(StockLevel.sku == SKU))
        }
        active = session.scalar(
            select(func.coalesce(func.sum(Reservation.qty), 0)).where(
                Reservation.sku == SKU, Reservation.status == "active"
            )
        )
        ledger = inventory_levels.ledger_totals(session, skus=[SKU])
    reserved = sum(r.reserved for r in rows.values())
    assert reserved == accepted == active, (reserved, accepted, active, outcomes)
    for code, row in rows.items():
        assert row.on_hand == ON_HAND[code] == ledger[(SKU, code)]
        assert 0 <= row.reserved <= row.on_hand, row
    # Available only went down during the race: every refusal came when less was left than it
    # asked for, so what is left now is less than the smallest refused request.
    available = sum(ON_HAND.values()) - reserved
    assert available < min(refused), (available, refused)
