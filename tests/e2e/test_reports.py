"""The reports API end to end: stock moved through the API reaches the reports through the
``stock.changed`` events, priced honestly; roles, bad input and the CSV export."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete

from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import Container
from storekeeper.events.relay import local_delivery, relay_once
from storekeeper.reporting import readmodel
from storekeeper.reporting.models import LedgerRow
from tests.conftest import Actor, Actors
from tests.e2e.api_support import API, assert_error
from tests.shop import add_product, add_warehouses

REPORTS = (
    "/reports/sales",
    "/reports/dead-stock",
    "/reports/low-stock",
    "/reports/valuation",
    "/reports/abc",
    "/reports/stock-history/TEA",
)


def _deliver(container: Container) -> None:
    """Deliver every pending event to the consumers now (the background relay may too)."""
    while relay_once(container.db, local_delivery(container.db, container.consumers)):
        pass


def _move(client: TestClient, who: Actor, **body: Any) -> None:
    r = client.post(f"{API}/stock/movements", headers=who.headers, json=body)
    assert r.status_code == 201, r.text


def _shop(client: TestClient, container: Container, manager: Actor, customer: Actor) -> None:
    """TEA at 500: 10 received at 200 and 10 without cost at BER, 5 moved to HAM, 3 sold over
    the counter, 2 sold in an order placed at 500 and shipped after the price went to 900."""
    add_warehouses(client, manager.headers)
    add_product(client, manager.headers, "TEA", price_cents=500)
    add_product(client, manager.headers, "MUG", price_cents=1200, stock={"MUC": 4})
    _move(
        client, manager, sku="TEA", warehouse="BER", delta=10, reason="receipt", unit_cost_cents=200
    )
    _move(client, manager, sku="TEA", warehouse="BER", delta=10, reason="receipt")
    r = client.post(
        f"{API}/stock/transfers",
        headers=manager.headers,
        json={"sku": "TEA", "from": "BER", "to": "HAM", "qty": 5},
    )
    assert r.status_code in (200, 201), r.text
    _move(client, manager, sku="TEA", warehouse="BER", delta=-3, reason="sale")
    headers = {**customer.headers, "Idempotency-Key": str(uuid.uuid4())}
    order = client.post(
        f"{API}/orders",
        headers=headers,
        json={"lines": [{"sku": "TEA", "qty": 2}], "ship_to": {"lat": 52.5, "lon": 13.4}},
    )
    assert order.status_code == 201, order.text
    _deliver(container)  # the counter sale is read (and priced) before the price changes
    r = client.patch(f"{API}/products/TEA", headers=manager.headers, json={"price_cents": 900})
    assert r.status_code == 200, r.text
    r = client.post(f"{API}/orders/{order.json()['id']}/ship", headers=manager.headers)
    assert r.status_code == 200, r.text


def test_stock_moved_through_the_api_shows_in_every_report(
    client: TestClient, container: Container, manager: Actor, customer: Actor
) -> None:
    _shop(client, container, manager, customer)
    _deliver(container)

    sales = client.get(f"{API}/reports/sales", headers=manager.headers).json()
    # 3 at the catalog price when sold (500) and 2 at the order's price (500), not today's 900.
    assert [(r["key"], r["units"], r["value_cents"]) for r in sales["rows"]] == [("TEA", 5, 2500)]
    by_wh = client.get(f"{API}/reports/sales?by=warehouse", headers=manager.headers).json()
    assert [(r["key"], r["units"]) for r in by_wh["rows"]] == [("BER", 5)]

    value = client.get(f"{API}/reports/valuation", headers=manager.headers).json()
    rows = {(r["sku"], r["warehouse"]): r for r in value["rows"]}
    assert rows["TEA", "BER"]["on_hand"] == 10 and rows["TEA", "BER"]["average_cost_cents"] == 200
    assert rows["TEA", "HAM"]["value_cents"] == 5 * 200  # the source's average cost travelled
    assert rows["MUG", "MUC"]["value_cents"] == 0  # received without any cost
    assert value["total_value_cents"] == 15 * 200

    dead = client.get(f"{API}/reports/dead-stock", headers=manager.headers).json()
    assert {(r["sku"], r["warehouse"]) for r in dead["rows"]} == {("TEA", "HAM"), ("MUG", "MUC")}
    low = client.get(f"{API}/reports/low-stock", headers=manager.headers).json()
    assert [(r["sku"], r["warehouse"], r["available"]) for r in low["rows"]] == [("MUG", "MUC", 4)]
    abc = client.get(f"{API}/reports/abc", headers=manager.headers).json()
    assert [(r["sku"], r["abc_class"], r["cumulative_pct"]) for r in abc["rows"]] == [
        ("TEA", "A", 100.0)
    ]
    history = client.get(f"{API}/reports/stock-history/TEA", headers=manager.headers).json()
    assert [r["on_hand"] for r in history["rows"] if r["warehouse"] == "BER"] == [
        10,
        20,
        15,
        12,
        10,
    ]
    assert history["closing"] == {"BER": 10, "HAM": 5}


def test_rebuild_copies_a_ledger_that_predates_reports_once(
    client: TestClient, container: Container, manager: Actor, customer: Actor
) -> None:
    _shop(client, container, manager, customer)
    _deliver(container)
    before = client.get(f"{API}/reports/valuation", headers=manager.headers).json()
    assert readmodel.rebuild(container.db) == 0  # all there: nothing to copy
    with container.db.transaction() as session:  # as if the ledger predated reporting
        session.execute(delete(LedgerRow))

    assert readmodel.rebuild(container.db) == 7
    assert readmodel.rebuild(container.db) == 0

    assert client.get(f"{API}/reports/valuation", headers=manager.headers).json() == before
    sales = client.get(f"{API}/reports/sales", headers=manager.headers).json()
    # The order's sale at what the customer paid (500); the counter sale, unknown to the
    # read model until now, at today's catalog price (900).
    assert [(r["key"], r["units"], r["value_cents"]) for r in sales["rows"]] == [
        ("TEA", 5, 2 * 500 + 3 * 900)
    ]


@pytest.mark.parametrize("path", REPORTS)
def test_reports_are_for_managers_and_admins_only(
    client: TestClient, actors: Actors, path: str
) -> None:
    assert_error(client.get(f"{API}{path}"), 401)
    for role in (Role.CLERK, Role.CUSTOMER):
        assert_error(client.get(f"{API}{path}", headers=actors.make(role).headers), 403)
    for role in (Role.MANAGER, Role.ADMIN):
        assert client.get(f"{API}{path}", headers=actors.make(role).headers).status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        "/reports/sales?since=2026-05-02&until=2026-05-01",
        "/reports/sales?top=0",
        "/reports/sales?top=1001",
        "/reports/sales?by=customer",
        "/reports/sales?since=yesterday",
        "/reports/sales?until=0",  # not a Unix time: a day is YYYY-MM-DD
        "/reports/valuation?at=9999-12-31",
        "/reports/valuation?at=2026-02-30",
        "/reports/dead-stock?days=0",
        "/reports/dead-stock?days=-5",
        "/reports/abc?since=2026-02-01&until=2026-01-01",
        "/reports/low-stock?warehouse=%20%2F",
        "/reports/low-stock?format=xml",
        "/reports/stock-history/TEA?until=0000-01-01",
    ],
)
def test_bad_report_parameters_are_a_clear_422(
    client: TestClient, manager: Actor, query: str
) -> None:
    detail = assert_error(client.get(f"{API}{query}", headers=manager.headers), 422)
    assert detail


def test_a_unit_cost_belongs_to_a_receipt_only(client: TestClient, manager: Actor) -> None:
    add_warehouses(client, manager.headers)
    add_product(client, manager.headers, "TEA", stock={"BER": 5})
    for body in (
        {"delta": -1, "reason": "sale", "unit_cost_cents": 100},
        {"delta": -1, "reason": "receipt", "unit_cost_cents": 100},
        {"delta": 1, "reason": "receipt", "unit_cost_cents": -1},
    ):
        r = client.post(
            f"{API}/stock/movements",
            headers=manager.headers,
            json={"sku": "TEA", "warehouse": "BER", **body},
        )
        assert_error(r, 422)


@pytest.mark.parametrize("path", REPORTS)
def test_every_report_downloads_as_csv(
    client: TestClient, container: Container, manager: Actor, customer: Actor, path: str
) -> None:
    _shop(client, container, manager, customer)
    _deliver(container)

    r = client.get(f"{API}{path}?format=csv", headers=manager.headers)

    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(r.text)))
    json_rows = client.get(f"{API}{path}", headers=manager.headers).json()["rows"]
    assert table[0] == list(json_rows[0]) if json_rows else table[0]
    assert len(table) == len(json_rows) + 1
