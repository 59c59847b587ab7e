"""The card-payment saga in embedded mode, against the payment simulator as a real process.

Every order ends ``confirmed`` or ``cancelled`` with a reason; a cancelled order's stock is
available again and the gateway holds no money for it; no order is authorized twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from storekeeper.api.app import create_app
from storekeeper.bootstrap import bootstrap
from storekeeper.config import Settings
from tests.conftest import Actor, Actors
from tests.payment_sim import Sim, start_sim, stop_sim
from tests.shop import add_product, add_warehouses, stock

CardShop = Callable[..., AbstractContextManager[TestClient]]


@pytest.fixture(scope="module")
def sim_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    """One simulator per xdist worker for this module."""
    sim = start_sim(tmp_path_factory.mktemp("sim") / "sim.log", "--seed", "11")
    yield sim
    stop_sim(sim)


@pytest.fixture
def sim(sim_process: Sim) -> Sim:
    """The simulator without faults or history."""
    sim_process.reset()
    return sim_process


@pytest.fixture
def card_shop(settings: Settings, sim: Sim) -> CardShop:
    """Runs the app (with its background jobs and sweeper) with a card gateway at the sim."""

    @contextmanager
    def run(**overrides: Any) -> Iterator[TestClient]:
        values = {
            "payment_url": sim.url,
            "payment_timeout_s": 0.5,
            "payment_retries": 1,
            "payment_breaker_failures": 3,
            "payment_breaker_reset_s": 1.0,
            "payment_deadline_s": 30.0,
            **overrides,
        }
        container = bootstrap(settings.model_copy(update=values))
        app = create_app(container=container)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client

    return run


def _shop(client: TestClient, actors: Actors, qty: int = 100) -> tuple[Actor, Actor]:
    from storekeeper.accounts.domain import Role

    manager, customer = actors.make(Role.MANAGER), actors.make(Role.CUSTOMER)
    add_warehouses(client, manager.headers)
    add_product(client, manager.headers, "MILK", price_cents=199, stock={"BER": qty})
    return manager, customer


def _place(client: TestClient, customer: Actor, token: str = "tok_ok", qty: int = 1) -> str:
    r = client.post(
        "/api/v1/orders",
        json={
            "lines": [{"sku": "MILK", "qty": qty}],
            "payment": {"method": "card", "token": token},
        },
        headers={**customer.headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "pending_payment"  # the gateway is asked in the background
    return str(r.json()["id"])


def _settled(client: TestClient, who: Actor, order_id: str, timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        order = client.get(f"/api/v1/orders/{order_id}", headers=who.headers).json()
        if order["status"] != "pending_payment":
            return order
        assert time.monotonic() < deadline, f"order {order_id} still pending_payment"
        time.sleep(0.05)


def _wait_for(condition: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.05)


def test_an_authorized_card_order_is_confirmed_and_captured_on_shipping(
    card_shop: CardShop, actors: Actors, sim: Sim
) -> None:
    with card_shop() as client:
        manager, customer = _shop(client, actors)
        order_id = _place(client, customer)
        order = _settled(client, customer, order_id)
        assert order["status"] == "confirmed"
        assert order["payment"]["reference"].startswith("auth_")
        assert stock(client, manager.headers, "MILK")["BER"]["reserved"] == 1

        r = client.post(f"/api/v1/orders/{order_id}/ship", headers=manager.headers)
        assert r.status_code == 200, r.text
        _wait_for(lambda: sim.stats()["captures"] == 1)
    assert sim.stats()["held_orders"] == [order_id]


def test_a_declined_card_cancels_the_order_and_frees_its_stock(
    card_shop: CardShop, actors: Actors, sim: Sim
) -> None:
    with card_shop() as client:
        manager, customer = _shop(client, actors)
        order = _settled(client, customer, _place(client, customer, "tok_decline", qty=5))
        assert order["status"] == "cancelled"
        assert "declined" in order["cancel_reason"]
        assert stock(client, manager.headers, "MILK")["BER"]["available"] == 100
    assert sim.stats()["held_orders"] == []


def test_a_customer_cancelling_a_confirmed_card_order_gets_the_money_back(
    card_shop: CardShop, actors: Actors, sim: Sim
) -> None:
    with card_shop() as client:
        manager, customer = _shop(client, actors)
        order_id = _place(client, customer)
        assert _settled(client, customer, order_id)["status"] == "confirmed"
        r = client.post(f"/api/v1/orders/{order_id}/cancel", headers=customer.headers)
        assert r.status_code == 200, r.text
        assert stock(client, manager.headers, "MILK")["BER"]["available"] == 100
        _wait_for(lambda: sim.stats()["voids"] == 1)
    assert sim.stats()["held_orders"] == []


def test_an_outage_cancels_orders_opens_the_breaker_and_recovers(
    card_shop: CardShop, actors: Actors, sim: Sim
) -> None:
    with card_shop() as client:
        manager, customer = _shop(client, actors)
        sim.outage(on=True)
        cancelled = [_settled(client, customer, _place(client, customer)) for _ in range(6)]
        assert {o["status"] for o in cancelled} == {"cancelled"}
        assert all("payment gateway unavailable" in o["cancel_reason"] for o in cancelled)
        # Three failed calls opened the breaker: later orders were cancelled without a request.
        assert any("circuit open" in o["cancel_reason"] for o in cancelled[3:])
        assert stock(client, manager.headers, "MILK")["BER"]["available"] == 100

        sim.outage(on=False)
        time.sleep(1.1)  # the breaker's reset timeout: the next call is a half-open trial
        recovered = _settled(client, customer, _place(client, customer))
        assert recovered["status"] == "confirmed"
        # The queued refunds of the cancelled orders get through once the gateway is back.
        _wait_for(lambda: sim.stats()["voids"] >= len(cancelled), timeout_s=60)
    stats = sim.stats()
    assert stats["held_orders"] == [recovered["id"]]
    assert stats["max_authorizations_per_order"] == 1


def test_an_order_left_pending_past_the_deadline_is_swept_and_never_charged(
    card_shop: CardShop, actors: Actors, sim: Sim
) -> None:
    sim.configure(latency_ms=3000)  # slower than the deadline, faster than the timeout
    with card_shop(payment_timeout_s=10.0, payment_deadline_s=1.0) as client:
        manager, customer = _shop(client, actors)
        order = _settled(client, customer, _place(client, customer, qty=3))
        assert order["status"] == "cancelled"
        assert "deadline" in order["cancel_reason"]
        assert stock(client, manager.headers, "MILK")["BER"]["available"] == 100
        sim.wait_idle()  # the slow authorization arrives after the cancellation...
        _wait_for(lambda: sim.stats()["held_orders"] == [])  # ...and is voided
        assert (
            client.get(f"/api/v1/orders/{order['id']}", headers=customer.headers).json()["status"]
            == "cancelled"
        )


def test_a_flaky_gateway_leaves_every_order_settled_and_none_charged_twice(
    card_shop: CardShop, actors: Actors, sim: Sim
) -> None:
    sim.configure(failure_rate=0.4)
    with card_shop(payment_retries=2, payment_breaker_failures=50) as client:
        manager, customer = _shop(client, actors)
        with ThreadPoolExecutor(max_workers=4) as pool:
            ids = list(pool.map(lambda _: _place(client, customer), range(24)))
        orders = [_settled(client, customer, order_id) for order_id in ids]
        confirmed = sorted(o["id"] for o in orders if o["status"] == "confirmed")
        assert {o["status"] for o in orders} <= {"confirmed", "cancelled"}
        assert confirmed, "with retries most payments should go through"
        assert stock(client, manager.headers, "MILK")["BER"]["reserved"] == len(confirmed)
        _wait_for(lambda: sim.stats()["held_orders"] == confirmed, timeout_s=60)
    assert sim.stats()["max_authorizations_per_order"] == 1


def test_a_card_order_without_a_token_is_refused_before_anything_is_reserved(
    card_shop: CardShop, actors: Actors
) -> None:
    with card_shop() as client:
        manager, customer = _shop(client, actors)
        r = client.post(
            "/api/v1/orders",
            json={"lines": [{"sku": "MILK", "qty": 1}], "payment": {"method": "card"}},
            headers={**customer.headers, "Idempotency-Key": "k"},
        )
        assert (r.status_code, r.json()["code"]) == (422, "payment_token_required")
        assert stock(client, manager.headers, "MILK")["BER"]["reserved"] == 0


def test_card_payment_needs_a_configured_gateway(
    client: TestClient, manager: Actor, customer: Actor
) -> None:
    add_warehouses(client, manager.headers)
    add_product(client, manager.headers, "MILK", stock={"BER": 1})
    r = client.post(
        "/api/v1/orders",
        json={"lines": [{"sku": "MILK", "qty": 1}], "payment": {"method": "card", "token": "t"}},
        headers={**customer.headers, "Idempotency-Key": "k"},
    )
    assert (r.status_code, r.json()["code"]) == (422, "payment_method_unavailable")
