"""Inventory as a service of its own: ``serve --only inventory`` and an ordering process that
reaches it over HTTP (``STOREKEEPER_INVENTORY_URL``), on one PostgreSQL database.

The order flow must keep its promises across the process boundary: orders reserve stock in the
other process and never oversell under concurrency, cancelling gives the stock back and
shipping turns it into sales (both as retried jobs), and with inventory down an order is
refused with 503 and leaves nothing behind.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from storekeeper.accounts.domain import Role
from storekeeper.accounts.keys import Keyring
from storekeeper.accounts.security import issue_service_token
from storekeeper.bootstrap import Container
from storekeeper.config import Settings
from storekeeper.inventory import levels as inventory_levels
from storekeeper.ordering import orphans
from storekeeper.ordering.models import Order
from storekeeper.ordering.stock import RemoteInventory
from tests.conftest import Actor, Actors, env_for
from tests.payment_sim import storekeeper_script
from tests.processes import free_port, stop, wait_healthy
from tests.shop import add_warehouses

pytestmark = pytest.mark.live

API = "/api/v1"


@pytest.fixture(params=["postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Split services share a server database (SQLite is refused: see config.py)."""
    return str(request.param)


@dataclass
class Service:
    """A ``storekeeper serve --only ...`` process."""

    url: str
    process: subprocess.Popen[bytes]


@dataclass
class Split:
    """An inventory process, an ordering process using it, and the people of the test."""

    inventory: Service
    ordering: Service
    manager: Actor
    customer: Actor
    start: Callable[..., Service]


@pytest.fixture
def split(settings: Settings, actors: Actors, tmp_path: Path) -> Iterator[Split]:
    started: list[Service] = []

    def start(only: str, log_name: str, port: int | None = None, **env: str) -> Service:
        port = port or free_port()
        log = tmp_path / f"{log_name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                [storekeeper_script(), "serve", "--only", only, "--port", str(port)],
                env={**env_for(settings), "STOREKEEPER_JOB_THREADS": "1", **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        service = Service(f"http://127.0.0.1:{port}", process)
        wait_healthy(service.url, process, log)
        started.append(service)
        return service

    inventory = start("inventory", "inventory")
    ordering = start(
        "accounts,catalog,ordering", "ordering", STOREKEEPER_INVENTORY_URL=inventory.url
    )
    manager, customer = actors.make(Role.MANAGER), actors.make(Role.CUSTOMER)
    with (
        httpx.Client(base_url=inventory.url, timeout=10) as at_inventory,
        httpx.Client(base_url=ordering.url, timeout=10) as at_ordering,
    ):
        add_warehouses(at_inventory, manager.headers)  # type: ignore[arg-type]
        r = at_ordering.post(
            f"{API}/products",
            headers=manager.headers,
            json={"sku": "MILK", "name": "Milk", "price_cents": 120, "currency": "EUR"},
        )
        assert r.status_code == 201, r.text
        r = at_inventory.post(
            f"{API}/stock/movements",
            headers=manager.headers,
            json={"sku": "MILK", "warehouse": "BER", "delta": 10, "reason": "receipt"},
        )
        assert r.status_code == 201, r.text
    yield Split(inventory, ordering, manager, customer, start)
    for service in reversed(started):
        if service.process.poll() is None:
            stop(service.process)


def _order(url: str, customer: Actor, qty: int = 1) -> httpx.Response:
    return httpx.post(
        f"{url}{API}/orders",
        json={"lines": [{"sku": "MILK", "qty": qty}], "ship_to": {"lat": 52.5, "lon": 13.4}},
        headers={**customer.headers, "Idempotency-Key": str(uuid.uuid4())},
        timeout=30,
    )


def _milk(split: Split) -> dict[str, int]:
    r = httpx.get(f"{split.inventory.url}{API}/stock/MILK", headers=split.manager.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    return {"on_hand": body["on_hand"], "reserved": body["reserved"]}


def _eventually(condition: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _orders(container: Container) -> int:
    with container.db.reading() as session:
        return int(session.scalar(select(func.count()).select_from(Order)) or 0)


def test_each_process_serves_only_its_contexts(split: Split, settings: Settings) -> None:
    headers = split.manager.headers
    assert httpx.get(f"{split.ordering.url}{API}/stock/MILK", headers=headers).status_code == 404
    assert httpx.get(f"{split.inventory.url}{API}/orders", headers=headers).status_code == 404
    assert httpx.get(f"{split.inventory.url}{API}/stock/MILK", headers=headers).status_code == 200
    # The reservation API takes managers and services, not customers.
    r = httpx.post(
        f"{split.inventory.url}{API}/stock/reservations",
        headers=split.customer.headers,
        json={"ref": "cart-1", "lines": [{"sku": "MILK", "qty": 1}]},
    )
    assert r.status_code == 403, r.text
    # A service token opens the reservation API and nothing else.
    service = {
        "Authorization": f"Bearer {issue_service_token(key=Keyring(settings.signing_key()))}"
    }
    r = httpx.post(
        f"{split.inventory.url}{API}/stock/reservations",
        headers=service,
        json={"ref": "cart-1", "lines": [{"sku": "MILK", "qty": 1}]},
    )
    assert r.status_code == 201, r.text
    r = httpx.post(
        f"{split.inventory.url}{API}/stock/movements",
        headers=service,
        json={"sku": "MILK", "warehouse": "BER", "delta": 5, "reason": "receipt"},
    )
    assert (r.status_code, r.json()["code"]) == (401, "invalid_token")


def test_orders_reserve_in_the_inventory_process_and_never_oversell(
    split: Split, container: Container
) -> None:
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def buy() -> None:
        for _ in range(4):
            r = _order(split.ordering.url, split.customer)
            with lock:
                answers.append(r)

    threads = [threading.Thread(target=buy) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201] * 10 + [409] * 6, [r.text for r in answers if r.status_code >= 500]
    assert {r.json()["code"] for r in answers if r.status_code == 409} == {"insufficient_stock"}
    assert all(r.json()["lines"][0]["warehouse"] == "BER" for r in answers if r.status_code == 201)
    assert _milk(split) == {"on_hand": 10, "reserved": 10}
    assert _orders(container) == 10


def test_cancelling_releases_and_shipping_fulfils_through_jobs(
    split: Split, container: Container
) -> None:
    kept, dropped = (
        _order(split.ordering.url, split.customer, 3),
        _order(split.ordering.url, split.customer, 2),
    )
    assert (kept.status_code, dropped.status_code) == (201, 201), (kept.text, dropped.text)
    assert _milk(split) == {"on_hand": 10, "reserved": 5}
    # A manager cannot settle an order's reservation in the inventory process: only the
    # ordering service's token names ``order:`` references.
    for action in ("release", "fulfil"):
        r = httpx.post(
            f"{split.inventory.url}{API}/stock/reservations/order:{kept.json()['id']}/{action}",
            headers=split.manager.headers,
        )
        assert (r.status_code, r.json()["code"]) == (404, "unknown_reservation"), r.text
    assert _milk(split) == {"on_hand": 10, "reserved": 5}

    r = httpx.post(
        f"{split.ordering.url}{API}/orders/{dropped.json()['id']}/cancel",
        headers=split.customer.headers,
    )
    assert r.status_code == 200, r.text
    _eventually(lambda: _milk(split)["reserved"] == 3, "the cancelled order's stock released")

    r = httpx.post(
        f"{split.ordering.url}{API}/orders/{kept.json()['id']}/ship", headers=split.manager.headers
    )
    assert r.status_code == 200, r.text
    _eventually(lambda: _milk(split) == {"on_hand": 7, "reserved": 0}, "the shipment fulfilled")
    with container.db.reading() as session:  # the ledger agrees with the running totals
        assert inventory_levels.ledger_totals(session, skus=["MILK"]) == {("MILK", "BER"): 7}


def test_with_inventory_down_an_order_is_refused_and_leaves_nothing(
    split: Split, container: Container
) -> None:
    port = int(split.inventory.url.rsplit(":", 1)[1])
    stop(split.inventory.process)

    r = _order(split.ordering.url, split.customer)

    assert r.status_code == 503, r.text
    assert r.json()["code"] == "inventory_unavailable"
    assert _orders(container) == 0
    # Back up (same address): orders go through again.
    split.start("inventory", "inventory-again", port=port)
    r = _order(split.ordering.url, split.customer)
    assert r.status_code == 201, r.text
    assert _milk(split) == {"on_hand": 10, "reserved": 1}


def test_a_reservation_whose_order_never_committed_is_released_by_the_sweeper(
    split: Split, settings: Settings, container: Container
) -> None:
    kept = _order(split.ordering.url, split.customer, 2)
    assert kept.status_code == 201, kept.text
    # What an ordering process killed between reserving and committing leaves behind: stock
    # held under an order reference that no order has.
    service = {
        "Authorization": f"Bearer {issue_service_token(key=Keyring(settings.signing_key()))}"
    }
    orphan = f"order:{uuid.uuid4()}"
    r = httpx.post(
        f"{split.inventory.url}{API}/stock/reservations",
        headers=service,
        json={"ref": orphan, "lines": [{"sku": "MILK", "qty": 3}]},
    )
    assert r.status_code == 201, r.text
    assert _milk(split) == {"on_hand": 10, "reserved": 5}
    # The list is for the ordering service only.
    r = httpx.get(
        f"{split.inventory.url}{API}/stock/reservations/stale", headers=split.manager.headers
    )
    assert r.status_code == 403, r.text

    quick = Settings.model_validate({**settings.model_dump(), "reservation_grace_s": 1})
    remote = RemoteInventory(split.inventory.url, signing_key=Keyring(settings.signing_key()))
    try:
        # Younger than the grace: an order may still be committing it, nothing is touched.
        orphans.sweep_orphan_reservations(db=container.db, inventory=remote, settings=settings)
        assert _milk(split) == {"on_hand": 10, "reserved": 5}
        time.sleep(1.2)
        orphans.sweep_orphan_reservations(db=container.db, inventory=remote, settings=quick)
    finally:
        remote.close()

    # The orphan's 3 are back; the committed order still holds its 2.
    assert _milk(split) == {"on_hand": 10, "reserved": 2}
    r = httpx.get(
        f"{split.inventory.url}{API}/stock/reservations/stale",
        headers=service,
        params={"older_than_s": 0},
    )
    assert r.json()["refs"] == [f"order:{kept.json()['id']}"]
