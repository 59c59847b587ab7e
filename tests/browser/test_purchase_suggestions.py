"""Purchase suggestions in a real browser: after a forecast run over a real ledger, a manager
opens the page from the menu, filters by warehouse and sees what to order."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import expect

from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import Container
from storekeeper.reporting.forecast.handlers import run_forecast
from tests.browser.conftest import Console, axe_violations
from tests.conftest import Actors
from tests.forecast_shop import DAYS, TODAY, build_ledger


def test_a_manager_finds_what_to_order_from_the_menu(
    console: Console, actors: Actors, container: Container
) -> None:
    manager = actors.make(Role.MANAGER)
    api = httpx.Client(base_url=console.url("/api/v1"), headers=manager.headers, timeout=10)
    for code in ("BER", "HAM"):
        r = api.post("/warehouses", json={"code": code, "name": code, "lat": 52.5, "lon": 13.4})
        assert r.status_code == 201, r.text
    for sku, name in (("TEA", "Green tea"), ("MUG", "Tea mug")):
        r = api.post("/products", json={"sku": sku, "name": name, "price_cents": 450})
        assert r.status_code == 201, r.text
    build_ledger(container)
    settings = container.settings.model_copy(update={"forecast_history_days": DAYS})
    run_forecast(container.db, settings=settings, today=TODAY)

    page = console.page
    console.sign_in(manager)
    page.get_by_role("link", name="Purchase suggestions").click()
    expect(page.get_by_role("heading", name="Purchase suggestions")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("1 product below the reorder point")
    row = page.locator("tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Tea mug")
    expect(row.locator("td.num").first).to_have_text("1")  # available
    page.get_by_label("Warehouse").select_option("BER")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/purchase-suggestions\?warehouse=BER$"))
    expect(page.get_by_role("status")).to_have_text("Nothing is below its reorder point")
    page.get_by_label("Warehouse").select_option("")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    console.shoot("purchase-suggestions")
    assert axe_violations(page) == []
