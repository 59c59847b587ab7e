"""The README's browser tour, step by step, on the demo data and the demo accounts it names."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from storekeeper import demo
from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import Container
from tests.browser.conftest import Console
from tests.conftest import Actor


def _demo_actor(role: Role) -> Actor:
    email, password, _ = next(user for user in demo.DEMO_USERS if user[2] is role)
    return Actor(id=None, email=email, password=password, role=role, headers={})  # type: ignore[arg-type]


def test_the_readme_browser_tour_runs_as_written(console: Console, container: Container) -> None:
    demo.load(container.db)
    page = console.page
    menu = page.get_by_role("navigation", name="Main")

    # "Sign in as the demo manager": the dashboard with units and value per warehouse.
    console.sign_in(_demo_actor(Role.MANAGER))
    expect(page.get_by_role("region", name="Stock per warehouse")).to_contain_text("BER")

    # 2. Products: searching "milk" narrows the table and the address follows.
    menu.get_by_role("link", name="Products", exact=True).click()
    # Keys typed before htmx has bound the box would never ask for results (a person cannot type
    # that fast; a loaded test machine can): wait for the page's scripts first.
    page.wait_for_load_state()
    page.get_by_role("searchbox").press_sequentially("milk")
    expect(page).to_have_url(re.compile(r"/products\?q=milk"))
    page.get_by_role("link", name="DEMO-0001").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Whole milk")
    expect(page.get_by_role("link", name="Edit")).to_be_visible()
    expect(page.locator("ul.barcodes")).to_contain_text("2000000000015")
    menu.get_by_role("link", name="Products", exact=True).click()
    page.wait_for_load_state()
    page.get_by_role("searchbox").press_sequentially("2000000000015", delay=5)
    page.get_by_role("searchbox").press("Enter")
    first = page.locator("#products-results tbody tr").first
    expect(first).to_contain_text("DEMO-0001")
    expect(first).to_contain_text("barcode match")

    # 3. Stock -> BER: receive 10 of DEMO-0001, SKU then Enter as a scanner would.
    menu.get_by_role("link", name="Stock", exact=True).click()
    page.get_by_role("link", name=re.compile(r"^BER")).click()
    page.locator("#receive-sku").press_sequentially("DEMO-0001")
    page.keyboard.press("Enter")
    page.keyboard.type("10")
    page.get_by_role("button", name="Receive", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Receipt of DEMO-0001 recorded")

    # 4. Count stock (stocktake): blind count, start.
    page.get_by_role("link", name="Count stock (stocktake)").click()
    page.get_by_label("Blind count").check()
    page.get_by_role("button", name="Start count").click()
    expect(page.get_by_role("button", name="Review")).to_be_visible()

    # 5-6. Orders, Cold chain, Sync exceptions open from the menu.
    for name in ("Orders", "Cold chain", "Sync exceptions"):
        menu.get_by_role("link", name=name, exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_contain_text(name.split()[0])

    # 7. The clerk sees Berlin only; the admin has the Admin pages.
    page.get_by_role("button", name="Sign out").click()
    console.sign_in(_demo_actor(Role.CLERK))
    menu.get_by_role("link", name="Stock", exact=True).click()
    expect(page.get_by_role("link", name=re.compile(r"^BER"))).to_be_visible()
    expect(page.get_by_role("link", name=re.compile(r"^HAM"))).to_have_count(0)
    page.get_by_role("button", name="Sign out").click()
    console.sign_in(_demo_actor(Role.ADMIN))
    menu.get_by_role("link", name="Admin", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Users")
