"""The orders pages in a real browser: an order placed through the JSON API is found, opened,
shipped and cancelled in the console, and its packing slip is printed."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import Dialog, expect

from storekeeper.accounts.domain import Role
from tests.browser.conftest import Console, axe_violations
from tests.conftest import Actor, Actors

WAREHOUSES = {"BER": (52.52, 13.405), "HAM": (53.551, 9.993)}
BREMEN = {"lat": 53.079, "lon": 8.801}


def _api(console: Console) -> httpx.Client:
    return httpx.Client(base_url=console.url("/api/v1"), timeout=10)


def _shop(api: httpx.Client, manager: Actor, products: dict[str, dict[str, int]]) -> None:
    """Warehouses BER and HAM, and each product with its stock per warehouse."""
    for code, (lat, lon) in WAREHOUSES.items():
        r = api.post(
            "/warehouses",
            headers=manager.headers,
            json={"code": code, "name": code, "lat": lat, "lon": lon},
        )
        assert r.status_code == 201, r.text
    for sku, stock in products.items():
        r = api.post(
            "/products",
            headers=manager.headers,
            json={"sku": sku, "name": f"Tin of {sku.lower()}", "price_cents": 450},
        )
        assert r.status_code == 201, r.text
        for code, qty in stock.items():
            r = api.post(
                "/stock/movements",
                headers=manager.headers,
                json={"sku": sku, "warehouse": code, "delta": qty, "reason": "receipt"},
            )
            assert r.status_code == 201, r.text


def _place(api: httpx.Client, customer: Actor, lines: list[dict[str, Any]]) -> dict[str, Any]:
    """An order paid by the manual method: confirmed at once, as in tests/e2e/test_orders.py."""
    r = api.post(
        "/orders",
        headers={**customer.headers, "Idempotency-Key": str(uuid.uuid4())},
        json={"lines": lines, "ship_to": BREMEN},
    )
    assert r.status_code == 201, r.text
    order: dict[str, Any] = r.json()
    assert order["status"] == "confirmed"
    return order


def _on_hand(api: httpx.Client, manager: Actor, sku: str) -> int:
    r = api.get(f"/stock/{sku}", headers=manager.headers)
    assert r.status_code == 200, r.text
    return int(r.json()["on_hand"])


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
def test_an_order_placed_through_the_api_is_found_and_shipped_in_the_console(
    console: Console, actors: Actors, backend: str
) -> None:
    manager, customer = actors.make(Role.MANAGER), actors.make(Role.CUSTOMER)
    someone_else = actors.make(Role.CUSTOMER)
    api = _api(console)
    _shop(api, manager, {"TEA": {"BER": 10}})
    order = _place(api, customer, [{"sku": "TEA", "qty": 3}])
    _place(api, someone_else, [{"sku": "TEA", "qty": 1}])
    page = console.page

    console.sign_in(manager)
    console.goto("/orders")
    expect(page.locator("tbody tr")).to_have_count(2)
    page.get_by_label("Status").select_option("confirmed")
    page.get_by_label("Customer").fill(customer.email)
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/orders\?status=confirmed&customer="))
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody")).to_contain_text(customer.email)
    expect(page.locator("tbody")).to_contain_text("13.50 EUR")
    console.shoot("orders-list")
    assert axe_violations(page) == []

    page.get_by_role("link", name=order["id"][:8]).click()
    expect(page).to_have_url(console.url(f"/orders/{order['id']}"))
    expect(page.locator("#order-status")).to_have_text("Confirmed")
    expect(page.get_by_role("table", name="Allocation")).to_contain_text("held")
    asked: list[str] = []

    def accept(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.get_by_role("button", name="Ship order").click()
    expect(page.locator("#order-status")).to_have_text("Shipped")
    assert asked == [f"Ship order {order['id'][:8]}? Its units leave the warehouse as sales."]
    expect(page.get_by_role("table", name="Allocation")).to_contain_text("shipped")
    expect(page.locator(".history li")).to_have_count(3)  # placed, confirmed, shipped
    expect(page.get_by_role("button", name="Ship order")).to_have_count(0)
    assert _on_hand(api, manager, "TEA") == 7
    console.shoot("orders-detail")
    assert axe_violations(page) == []


def test_an_order_is_cancelled_after_confirming_and_a_refusal_is_said_in_words(
    console: Console, actors: Actors
) -> None:
    manager, customer = actors.make(Role.MANAGER), actors.make(Role.CUSTOMER)
    api = _api(console)
    _shop(api, manager, {"RICE": {"HAM": 4, "BER": 5}, "SALT": {"BER": 2}})
    split = _place(api, customer, [{"sku": "RICE", "qty": 7}, {"sku": "SALT", "qty": 1}])
    doomed = _place(api, customer, [{"sku": "SALT", "qty": 1}])
    page = console.page
    console.sign_in(manager)

    console.goto(f"/orders/{split['id']}/packing-slip")
    expect(page.get_by_role("heading", name="Pick from BER")).to_be_visible()
    expect(page.get_by_role("table", name="Pick from HAM")).to_contain_text("Tin of rice")
    expect(page.get_by_role("table", name="Pick from BER")).to_contain_text("SALT")
    expect(page.get_by_role("button", name="Print")).to_be_visible()
    console.shoot("orders-packing-slip")
    assert axe_violations(page) == []
    page.emulate_media(media="print")
    expect(page.locator(".topbar")).to_be_hidden()
    expect(page.get_by_role("button", name="Print")).to_be_hidden()
    page.emulate_media(media="screen")

    replies = [False, True]  # the first "Cancel order" is thought better of; then always yes
    page.on(
        "dialog", lambda d: d.accept() if (replies.pop(0) if replies else True) else d.dismiss()
    )
    console.goto(f"/orders/{split['id']}")
    page.get_by_label("Reason for cancelling").fill("the customer called")
    page.get_by_role("button", name="Cancel order").click()
    expect(page.locator("#order-status")).to_have_text("Confirmed")
    page.get_by_role("button", name="Cancel order").click()
    expect(page.locator("#order-status")).to_have_text("Cancelled")
    expect(page.locator("dl.facts").first).to_contain_text("the customer called")
    assert _on_hand(api, manager, "RICE") == 9  # nothing left the shelves

    console.goto(f"/orders/{doomed['id']}")
    r = api.post(f"/orders/{doomed['id']}/cancel", headers=customer.headers)
    assert r.status_code == 200, r.text
    page.get_by_role("button", name="Ship order").click()
    expect(page.get_by_role("alert")).to_have_text("This order was cancelled: it cannot ship.")
    expect(page.locator("#order-status")).to_have_text("Cancelled")
