"""Placing, cancelling and shipping orders through the HTTP API."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from tests.conftest import Actor
from tests.shop import AUGSBURG, BREMEN, add_product, add_warehouses, stock


def _order(client: TestClient, who: Actor, body: dict, key: str | None = None):  # type: ignore[no-untyped-def]
    headers = {**who.headers, "Idempotency-Key": key or str(uuid.uuid4())}
    return client.post("/api/v1/orders", headers=headers, json=body)


def test_order_is_served_by_nearest_warehouse_with_enough_stock(
    client: TestClient, manager: Actor, customer: Actor
) -> None:
    add_warehouses(client, manager.headers)
    add_product(
        client, manager.headers, "MILK", price_cents=129, stock={"HAM": 2, "BER": 10, "MUC": 10}
    )

    near_bremen = _order(
        client, customer, {"lines": [{"sku": "MILK", "qty": 2}], "ship_to": BREMEN}
    )
    # Hamburg is nearest to Bremen but now empty: Berlin is nearer than Munich.
    next_bremen = _order(
        client, customer, {"lines": [{"sku": "MILK", "qty": 1}], "ship_to": BREMEN}
    )
    near_augsburg = _order(
        client, customer, {"lines": [{"sku": "MILK", "qty": 3}], "ship_to": AUGSBURG}
    )

    assert near_bremen.status_code == 201, near_bremen.text
    assert [(ln["warehouse"], ln["qty"]) for ln in near_bremen.json()["lines"]] == [("HAM", 2)]
    assert [ln["warehouse"] for ln in next_bremen.json()["lines"]] == ["BER"]
    assert [ln["warehouse"] for ln in near_augsburg.json()["lines"]] == ["MUC"]
    assert near_bremen.json()["total_cents"] == 258
    assert near_bremen.json()["status"] == "confirmed"


def test_line_is_split_only_when_no_single_warehouse_can_serve(
    client: TestClient, manager: Actor, customer: Actor
) -> None:
    add_warehouses(client, manager.headers)
    add_product(client, manager.headers, "RICE", stock={"HAM": 4, "BER": 5, "MUC": 3})

    r = _order(client, customer, {"lines": [{"sku": "RICE", "qty": 10}], "ship_to": BREMEN})

    assert r.status_code == 201, r.text
    assert [(ln["warehouse"], ln["qty"]) for ln in r.json()["lines"]] == [
        ("HAM", 4),
        ("BER", 5),
        ("MUC", 1),
    ]
    levels = stock(client, manager.headers, "RICE")
    assert levels["total"] == {"on_hand": 12, "reserved": 10, "available": 2}


def test_insufficient_stock_is_409_naming_the_sku_and_reserves_nothing(
    client: TestClient, manager: Actor, customer: Actor
) -> None:
    add_warehouses(client, manager.headers)
    add_product(client, manager.headers, "OIL", stock={"BER": 5})
    add_product(client, manager.headers, "SALT", stock={"BER": 1})

    r = _order(client, customer, {"lines": [{"sku": "OIL", "qty": 2}, {"sku": "SALT", "qty": 2}]})

    assert r.status_code == 409
    assert r.json()["code"] == "insufficient_stock"
    assert "SALT" in r.json()["detail"]
    assert stock(client, manager.headers, "OIL")["total"]["reserved"] == 0


def test_cancel_releases_stock_and_ship_turns_reservation_into_sale(
    client: TestClient, manager: Actor, customer: Actor
) -> None:
    add_warehouses(client, manager.headers)
    add_product(client, manager.headers, "TEA", stock={"BER": 5})
    first = _order(client, customer, {"lines": [{"sku": "TEA", "qty": 3}]}).json()
    second = _order(client, customer, {"lines": [{"sku": "TEA", "qty": 2}]}).json()

    cancelled = client.post(f"/api/v1/orders/{first['id']}/cancel", headers=customer.headers)
    shipped = client.post(f"/api/v1/orders/{second['id']}/ship", headers=manager.headers)

    assert cancelled.json()["status"] == "cancelled"
    assert shipped.json()["status"] == "shipped"
    assert stock(client, manager.headers, "TEA")["BER"] == {
        "warehouse": "BER",
        "on_hand": 3,
        "reserved": 0,
        "available": 3,
    }
    again = client.post(f"/api/v1/orders/{second['id']}/cancel", headers=manager.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_status"


def test_idempotency_key_replays_first_answer_and_refuses_other_body(
    client: TestClient, manager: Actor, customer: Actor
) -> None:
    add_warehouses(client, manager.headers)
    add_product(client, manager.headers, "JAM", stock={"BER": 5})
    body = {"lines": [{"sku": "JAM", "qty": 1}]}

    first = _order(client, customer, body, key="order-1")
    replay = _order(client, customer, body, key="order-1")
    other = _order(client, customer, {"lines": [{"sku": "JAM", "qty": 2}]}, key="order-1")

    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    assert stock(client, manager.headers, "JAM")["total"]["reserved"] == 1


def test_customers_see_only_their_own_orders(
    client: TestClient, manager: Actor, customer: Actor, actors
) -> None:  # type: ignore[no-untyped-def]
    from storekeeper.accounts.domain import Role

    other = actors.make(Role.CUSTOMER)
    add_warehouses(client, manager.headers)
    add_product(client, manager.headers, "FIG", stock={"BER": 5})
    mine = _order(client, customer, {"lines": [{"sku": "FIG", "qty": 1}]}).json()
    theirs = _order(client, other, {"lines": [{"sku": "FIG", "qty": 1}]}).json()

    listed = client.get("/api/v1/orders", headers=customer.headers).json()["items"]
    assert [o["id"] for o in listed] == [mine["id"]]
    assert client.get(f"/api/v1/orders/{theirs['id']}", headers=customer.headers).status_code == 404
    assert (
        client.post(f"/api/v1/orders/{theirs['id']}/cancel", headers=customer.headers).status_code
        == 404
    )
    assert (
        client.post(f"/api/v1/orders/{mine['id']}/ship", headers=customer.headers).status_code
        == 403
    )
    staff_view = client.get("/api/v1/orders", headers=manager.headers).json()["items"]
    assert {o["id"] for o in staff_view} == {mine["id"], theirs["id"]}
