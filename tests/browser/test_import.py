"""The console's Import page in a real browser: upload a file, see the dry run's diff and every
bad line, fix the file, confirm, watch the progress bar, and find the products and stock."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import expect

from storekeeper.accounts.domain import Role
from tests.browser.conftest import Console, axe_violations
from tests.conftest import Actors

GOOD = "sku,name,price_cents,quantity\nTEA-1,Green tea,450,10\nTEA-2,Black tea,390,5\n"


def test_upload_check_confirm_and_watch_the_import(
    console: Console, actors: Actors, tmp_path: Path
) -> None:
    manager = actors.make(Role.MANAGER)
    api = httpx.Client(base_url=console.url("/api/v1"), timeout=10)
    warehouse = {"code": "BER", "name": "Berlin", "lat": 52.5, "lon": 13.4}
    assert api.post("/warehouses", json=warehouse, headers=manager.headers).status_code == 201
    page = console.page
    console.sign_in(manager)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Import").click()
    expect(page.get_by_role("heading", name="Import products and stock")).to_be_visible()

    # A quantity column without saying what it means: the error is next to that field.
    source = tmp_path / "tea.csv"
    source.write_text(GOOD + "TEA-3,,x,-1\n")
    page.get_by_label("File to import").set_input_files(str(source))
    page.get_by_role("button", name="Check the file").click()
    expect(page.locator("#stock-error")).to_contain_text("quantity column")

    page.get_by_label("File to import").set_input_files(str(source))
    page.get_by_label("Set: a count").check()
    page.get_by_label("Warehouse of the quantities").select_option("BER")
    page.get_by_role("button", name="Check the file").click()
    summary = page.locator("#import-summary")
    expect(summary).to_contain_text("1 invalid", timeout=20_000)
    problems = page.get_by_role("alert").filter(has_text="invalid row")
    expect(problems).to_contain_text("name")
    expect(problems).to_contain_text("price_cents")
    expect(problems).to_contain_text("quantity")
    expect(page.get_by_role("button", name="Import these changes")).to_have_count(0)
    console.shoot("import-invalid")

    page.get_by_role("link", name="Import", exact=True).first.click()
    source.write_text(GOOD)
    page.get_by_label("File to import").set_input_files(str(source))
    page.get_by_label("Set: a count").check()
    page.get_by_label("Warehouse of the quantities").select_option("BER")
    page.get_by_role("button", name="Check the file").click()
    expect(summary).to_contain_text("2 new", timeout=20_000)
    diff = page.locator("#import-diff")
    expect(diff).to_contain_text("new product")
    expect(diff).to_contain_text("on-hand 0 → 10")
    assert axe_violations(page) == []
    console.shoot("import-dry-run")
    page.get_by_role("button", name="Import these changes").click()
    expect(summary).to_contain_text("Imported 2 rows", timeout=20_000)
    assert api.get("/products/TEA-1").json()["name"] == "Green tea"
    stock = api.get("/stock/TEA-1", headers=manager.headers).json()
    assert stock["on_hand"] == 10


def test_clerks_have_no_import_page(console: Console, actors: Actors) -> None:
    clerk = actors.make(Role.CLERK)
    console.sign_in(clerk)
    expect(
        console.page.get_by_role("navigation", name="Main").get_by_role("link", name="Import")
    ).to_have_count(0)
    response = console.page.goto(console.url("/import"))
    assert response is not None and response.status == 403
