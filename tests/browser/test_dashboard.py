"""The dashboard in a real browser: stock per warehouse, and figures that follow other people's
work live, without reloading the page."""

from __future__ import annotations

import re

import httpx
from fastapi.testclient import TestClient
from playwright.sync_api import expect

from storekeeper.accounts.domain import Role
from tests.browser.conftest import Console, axe_violations
from tests.conftest import Actor, Actors
from tests.e2e.test_console_http import _signed_in
from tests.shop import WAREHOUSES

API = "/api/v1"


def _shop(api: httpx.Client | TestClient, headers: dict[str, str]) -> None:
    """Warehouses BER, HAM, MUC; milk (1.99) with 12 in BER and 3 in HAM, tea (4.50) with 40 in
    HAM."""
    for code, (lat, lon) in WAREHOUSES.items():
        body = {"code": code, "name": code, "lat": lat, "lon": lon}
        assert api.post(f"{API}/warehouses", headers=headers, json=body).status_code == 201
    for sku, cents, stock in (("MILK-1", 199, {"BER": 12, "HAM": 3}), ("TEA-1", 450, {"HAM": 40})):
        body = {"sku": sku, "name": f"Product {sku}", "price_cents": cents, "currency": "EUR"}
        assert api.post(f"{API}/products", headers=headers, json=body).status_code == 201
        for code, qty in stock.items():
            _move(api, headers, sku, code, qty)


def _move(
    api: httpx.Client | TestClient, headers: dict[str, str], sku: str, warehouse: str, delta: int
) -> None:
    body = {"sku": sku, "warehouse": warehouse, "delta": delta, "reason": "receipt"}
    answer = api.post(f"{API}/stock/movements", headers=headers, json=body)
    assert answer.status_code == 201, answer.text


def test_a_stock_change_by_someone_else_appears_on_the_open_dashboard_without_a_reload(
    console: Console, actors: Actors
) -> None:
    manager, colleague = actors.make(Role.MANAGER), actors.make(Role.MANAGER)
    api = httpx.Client(base_url=console.server.url, timeout=10)
    _shop(api, colleague.headers)
    console.page.add_init_script(
        "document.addEventListener('htmx:sseOpen', () => { window.liveOpen = true; });"
    )
    console.sign_in(manager)
    expect(console.page).to_have_url(console.url("/"))
    stock = console.page.get_by_role("region", name="Stock per warehouse")
    berlin = stock.get_by_role("row", name=re.compile(r"^BER "))
    expect(berlin).to_contain_text("12")
    expect(berlin).to_contain_text("23.88 EUR")  # 12 x 1.99
    expect(stock.get_by_role("row", name=re.compile(r"^HAM "))).to_contain_text("185.97 EUR")
    low = console.page.get_by_role("region", name="Low stock")
    expect(low.get_by_role("row", name=re.compile(r"MILK-1"))).to_contain_text("HAM")
    console.shoot("dashboard")
    assert axe_violations(console.page) == []

    console.page.wait_for_function("window.liveOpen === true")
    console.page.evaluate("window.sameDocument = true")
    _move(api, colleague.headers, "MILK-1", "BER", 5)

    expect(berlin).to_contain_text("17")
    expect(berlin).to_contain_text("33.83 EUR")
    movements = console.page.get_by_role("region", name="Recent stock movements")
    expect(movements.get_by_role("row").nth(1)).to_contain_text("+5")
    # A burst: the refresh the first event starts may miss the second; one follows the burst.
    _move(api, colleague.headers, "MILK-1", "BER", 1)
    _move(api, colleague.headers, "MILK-1", "BER", 1)
    expect(berlin).to_contain_text("19")
    assert console.page.evaluate("window.sameDocument") is True
    expect(console.page).to_have_url(console.url("/"))


def test_a_clerk_sees_their_warehouses_figures_that_follow_stock_prices_and_archiving(
    client: TestClient, manager: Actor, actors: Actors
) -> None:
    _shop(client, manager.headers)
    _signed_in(client, actors.make(Role.CLERK, warehouses=["HAM"]))
    header = "warehouse,skus,on_hand,reserved,available,value_EUR"

    page = client.get("/").text
    assert ">HAM<" in page
    assert ">BER<" not in page
    card = client.get("/dashboard/stock", headers={"HX-Request": "true"})
    assert "<html" not in card.text  # the fragment alone
    csv = client.get("/dashboard/stock?format=csv").text.splitlines()
    assert csv == [header, "HAM,2,43,0,43,185.97"]  # 3 x 1.99 + 40 x 4.50
    # The value is kept between requests, and computed again when stock or a price changes.
    _move(client, manager.headers, "TEA-1", "HAM", -10)
    csv = client.get("/dashboard/stock?format=csv").text.splitlines()
    assert csv == [header, "HAM,2,33,0,33,140.97"]
    price = {"price_cents": 500}
    patch = client.patch(f"{API}/products/TEA-1", headers=manager.headers, json=price)
    assert patch.status_code == 200, patch.text
    csv = client.get("/dashboard/stock?format=csv").text.splitlines()
    assert csv == [header, "HAM,2,33,0,33,155.97"]
    # Low stock: milk's 3 units in HAM, until milk is archived (its stock still has a value).
    low = client.get("/dashboard/low-stock?format=csv").text.splitlines()
    assert low[1:] == ["MILK-1,Product MILK-1,HAM,3,0,3"]
    assert client.delete(f"{API}/products/MILK-1", headers=manager.headers).status_code == 200
    assert client.get("/dashboard/low-stock?format=csv").text.splitlines()[1:] == []
    csv = client.get("/dashboard/stock?format=csv").text.splitlines()
    assert csv == [header, "HAM,2,33,0,33,155.97"]
