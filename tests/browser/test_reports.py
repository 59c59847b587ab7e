"""The report pages in a real browser: a manager opens Reports from the menu, sees the chart and
the table, moves between reports, asks for a SKU's history and downloads a CSV."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
from playwright.sync_api import expect

from storekeeper.accounts.domain import Role
from tests.browser.conftest import Console, axe_violations
from tests.conftest import Actors

API = "/api/v1"


def _wait_for_sales(api: httpx.Client) -> None:
    """Until the reporting consumer has read the sale's event (the server relays it)."""
    for _ in range(150):
        if api.get(f"{API}/reports/sales").json()["rows"]:
            return
        time.sleep(0.1)
    raise AssertionError("the sale never reached the sales report")


def test_a_manager_reads_and_exports_the_reports(console: Console, actors: Actors) -> None:
    manager = actors.make(Role.MANAGER)
    api = httpx.Client(base_url=console.server.url, headers=manager.headers, timeout=10)
    for code in ("BER", "HAM"):
        body = {"code": code, "name": code, "lat": 52.5, "lon": 13.4}
        assert api.post(f"{API}/warehouses", json=body).status_code == 201
    for sku, cents in (("TEA", 500), ("MUG", 1200)):
        body = {"sku": sku, "name": f"Product {sku}", "price_cents": cents, "currency": "EUR"}
        assert api.post(f"{API}/products", json=body).status_code == 201
    for move in (
        {
            "sku": "TEA",
            "warehouse": "BER",
            "delta": 20,
            "reason": "receipt",
            "unit_cost_cents": 150,
        },
        {"sku": "MUG", "warehouse": "HAM", "delta": 3, "reason": "receipt", "unit_cost_cents": 700},
        {"sku": "TEA", "warehouse": "BER", "delta": -6, "reason": "sale"},
    ):
        assert api.post(f"{API}/stock/movements", json=move).status_code == 201
    _wait_for_sales(api)

    console.sign_in(manager)
    console.page.get_by_role("link", name="Reports").first.click()
    expect(console.page).to_have_url(console.url("/reports/sales"))
    expect(console.page.locator("#chart canvas").first).to_be_visible()
    row = console.page.get_by_role("row", name=re.compile("TEA"))
    expect(row).to_contain_text("30.00")
    console.shoot("reports-sales")
    assert axe_violations(console.page) == []

    console.page.get_by_role("link", name="Valuation").click()
    expect(console.page).to_have_url(console.url("/reports/valuation"))
    expect(console.page.locator("#report-summary")).to_contain_text("Stock worth 42.00")
    expect(console.page.locator("#chart canvas").first).to_be_visible()

    console.page.get_by_role("link", name="Stock history").click()
    console.page.get_by_label("SKU").fill("TEA")
    console.page.get_by_role("button", name="Show").click()
    expect(console.page).to_have_url(re.compile(r"/reports/stock-history/TEA"))
    history = console.page.locator("table.report")
    expect(history.get_by_role("row")).to_have_count(3)  # heading and two movements
    expect(console.page.locator("#chart canvas").first).to_be_visible()

    console.page.get_by_role("link", name="Dead stock").click()
    expect(console.page.get_by_role("row", name=re.compile("MUG"))).to_contain_text("never")
    link = console.page.get_by_role("link", name="Download CSV")
    with console.page.expect_download() as download:
        link.click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert text.splitlines()[0] == "sku,warehouse,on_hand,last_sold_at"
    assert "MUG,HAM,3," in text
