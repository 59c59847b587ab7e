"""The orders and sync-exceptions pages over plain HTTP: the no-JavaScript paths, the role rules,
the CSV exports, and query strings that must give a page in words, never a 500."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from storekeeper.accounts.domain import Role
from storekeeper.api.app import create_app
from storekeeper.bootstrap import Container
from storekeeper.ordering import service as ordering
from storekeeper.ordering.stock import LocalInventory
from storekeeper.web import orders as order_pages
from tests.conftest import Actor, Actors
from tests.e2e.test_console_http import _signed_in
from tests.shop import add_product, add_warehouses
from tests.unit.fakes import FakeGateway


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """Page rendering does not depend on the database: SQLite only."""
    return str(request.param)


@pytest.fixture
def web(container: Container) -> Iterator[TestClient]:
    """The app without its background workers, so an unpaid order stays unpaid."""
    client = TestClient(create_app(container=container), raise_server_exceptions=False)
    yield client
    client.close()


def _order(client: TestClient, who: Actor, lines: list[dict[str, Any]]) -> str:
    r = client.post(
        "/api/v1/orders",
        headers={**who.headers, "Idempotency-Key": str(uuid.uuid4())},
        json={"lines": lines},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_orders_filter_page_and_export_and_ship_and_cancel_from_plain_forms(
    web: TestClient,
    manager: Actor,
    actors: Actors,
    container: Container,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_warehouses(web, manager.headers)
    add_product(web, manager.headers, "TEA", stock={"BER": 10})
    alice, bob = actors.make(Role.CUSTOMER), actors.make(Role.CUSTOMER)
    first, second = (_order(web, alice, [{"sku": "TEA", "qty": 1}]) for _ in range(2))
    _order(web, bob, [{"sku": "TEA", "qty": 2}])
    csrf = _signed_in(web, manager)

    monkeypatch.setattr(order_pages, "PAGE_SIZE", 1)
    page = web.get("/orders", params={"customer": alice.email.upper(), "status": ""})
    assert page.status_code == 200 and second[:8] in page.text and first[:8] not in page.text
    later = re.search(r'href="(/orders\?[^"]*cursor=[^"]+)"', page.text)
    assert later, page.text
    page = web.get(later[1].replace("&amp;", "&"))
    assert first[:8] in page.text and "Next page" not in page.text

    export = web.get("/orders", params={"customer": alice.email, "format": "csv"})
    assert export.headers["content-type"].startswith("text/csv")
    rows = _csv(export.text)
    assert [r["order_id"] for r in rows] == [second, first]
    assert {r["customer_email"] for r in rows} == {alice.email} and rows[0]["total"] == "2.50"
    today = rows[0]["placed_at"][:10]
    assert len(_csv(web.get(f"/orders?placed_from={today}&placed_to={today}&format=csv").text)) == 3
    assert _csv(web.get("/orders?placed_to=2000-01-01&format=csv").text) == []

    shipped = web.post(f"/orders/{first}/ship", data={"csrf_token": csrf}, follow_redirects=False)
    assert shipped.status_code == 303
    assert shipped.headers["location"] == f"/orders/{first}?done=shipped"
    assert "Order shipped." in web.get(shipped.headers["location"]).text
    again = web.post(f"/orders/{first}/ship", data={"csrf_token": csrf})
    assert again.status_code == 409 and "This order has shipped already." in again.text
    cancelled = web.post(
        f"/orders/{second}/cancel", data={"csrf_token": csrf, "reason": "wrong tea"}
    )
    assert cancelled.status_code == 200 and "Order cancelled." in cancelled.text
    assert "wrong tea" in cancelled.text

    with container.db.transaction() as session:
        unpaid = ordering.place(
            session,
            customer_id=alice.id,
            lines=[("TEA", 1)],
            ship_to=None,
            payment_method="card",
            payment_token="tok",
            gateways={"card": FakeGateway()},
            inventory=LocalInventory(container.db),
        )
    refused = web.post(f"/orders/{unpaid.id}/ship", data={"csrf_token": csrf})
    assert refused.status_code == 409
    assert "This order is not paid yet: it can ship once its payment is confirmed." in refused.text
    too_long = web.post(
        f"/orders/{unpaid.id}/cancel", data={"csrf_token": csrf, "reason": "x" * 501}
    )
    assert too_long.status_code == 422 and 'aria-describedby="cancel-reason-error"' in too_long.text


def test_a_clerk_ships_only_from_their_warehouses(
    web: TestClient, manager: Actor, actors: Actors
) -> None:
    add_warehouses(web, manager.headers)
    add_product(web, manager.headers, "TEA", stock={"BER": 10})
    order = _order(web, actors.make(Role.CUSTOMER), [{"sku": "TEA", "qty": 1}])
    csrf = _signed_in(web, actors.make(Role.CLERK, warehouses=["HAM"]))

    page = web.get(f"/orders/{order}")
    assert page.status_code == 200  # clerks read every order, as the API
    assert "you are not assigned to warehouse BER" in page.text and "Ship order" not in page.text
    refused = web.post(f"/orders/{order}/ship", data={"csrf_token": csrf})
    assert refused.status_code == 403 and "you are not assigned to warehouse BER" in refused.text


@pytest.mark.parametrize(
    "path",
    [
        "/orders?status=lost",
        "/orders?placed_from=yesterday",
        "/orders?cursor=not-a-cursor",
        "/orders?format=xls",
        "/orders?customer=nobody",
        "/orders?customer=nobody@example.com",
        "/orders?placed_from=2026-02-02&placed_to=2026-02-01",
        "/orders/not-an-order",
        "/orders/00000000-0000-0000-0000-000000000000",
        "/orders/00000000-0000-0000-0000-000000000000/packing-slip",
        "/sync-exceptions?status=closed",
        "/sync-exceptions?warehouse=%00",
        "/sync-exceptions?cursor=x",
        "/sync-exceptions/0",
        "/sync-exceptions/99",
        "/sync-exceptions/99999999999999999999",
    ],
)
def test_a_bad_query_is_a_page_in_words(client: TestClient, manager: Actor, path: str) -> None:
    _signed_in(client, manager)
    answer = client.get(path)
    assert answer.status_code in (404, 422), answer.text
    assert answer.headers["content-type"].startswith("text/html")


def test_clerks_see_their_warehouses_exceptions_and_only_managers_resolve(
    web: TestClient, manager: Actor, actors: Actors
) -> None:
    add_warehouses(web, manager.headers)
    add_product(web, manager.headers, "MILK", stock={"BER": 1, "HAM": 1})
    for code in ("BER", "HAM"):
        body = {
            "replica_id": f"till-{code}",
            "mutations": [
                {
                    "id": str(uuid.uuid4()),
                    "type": "stock.sell",
                    "data": {"warehouse": code, "sku": "MILK", "qty": 3},
                    "hlc": "1-0-till",
                }
            ],
        }
        assert web.post("/api/v1/sync/push", json=body, headers=manager.headers).status_code == 200
    clerk_csrf = _signed_in(web, actors.make(Role.CLERK, warehouses=["HAM"]))

    rows = _csv(web.get("/sync-exceptions?status=all&format=csv").text)
    assert [(r["warehouse"], r["shortfall"], r["replica_id"]) for r in rows] == [
        ("HAM", "2", "till-HAM")
    ]
    assert web.get("/sync-exceptions?warehouse=BER").status_code == 403
    assert web.get(f"/sync-exceptions/{int(rows[0]['id']) - 1}").status_code == 403
    mine = web.get(f"/sync-exceptions/{rows[0]['id']}")
    assert "Managers and admins resolve" in mine.text and "Resolve exception" not in mine.text
    form = {"csrf_token": clerk_csrf, "resolution": "accept_loss", "note": "x"}
    assert web.post(f"/sync-exceptions/{rows[0]['id']}/resolve", data=form).status_code == 403

    manager_csrf = _signed_in(web, manager)
    url = f"/sync-exceptions/{rows[0]['id']}/resolve"
    form = {"csrf_token": manager_csrf, "resolution": "correct_count", "note": "shelf"}
    missing = web.post(url, data=form)
    assert missing.status_code == 422 and "enter the number of units counted" in missing.text
    below = web.post(url, data={**form, "counted": "-1"})
    assert below.status_code == 422 and 'id="counted-error"' in below.text
    done = web.post(url, data={**form, "counted": "4"}, follow_redirects=False)
    assert done.status_code == 303
    page = web.get(done.headers["location"])
    assert "resolved: correct the count" in page.text and "<dd>4</dd>" in page.text
    twice = web.post(url, data={**form, "counted": "4"})
    assert twice.status_code == 409 and "resolved already" in twice.text
    stock = web.get("/api/v1/stock/MILK", headers=manager.headers).json()
    assert {w["warehouse"]: w["on_hand"] for w in stock["warehouses"]} == {"BER": 0, "HAM": 4}
