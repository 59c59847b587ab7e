"""Barcodes in the console: typed or scanned into the product form (each bad line said in
words), shown on the product page, and a scan into the products search finds the product."""

from __future__ import annotations

from playwright.sync_api import expect

from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import Container
from storekeeper.catalog import service as catalog
from storekeeper.catalog.schemas import ProductCreate
from tests.browser.conftest import Console, axe_violations
from tests.conftest import Actors

EAN13 = "4006381333931"
UPC = "036000291452"
EAN8 = "96385074"


def _add(container: Container, sku: str, name: str, codes: list[str]) -> None:
    with container.db.transaction() as session:
        body = ProductCreate(sku=sku, name=name, price_cents=199, barcodes=codes)
        catalog.create(session, data=body.model_dump())


def test_a_manager_gives_a_product_barcodes_fixing_the_lines_the_form_refuses(
    console: Console, actors: Actors, container: Container
) -> None:
    _add(container, "TEA-1", "Green tea", [EAN8])
    console.sign_in(actors.make(Role.MANAGER))
    console.goto("/products/new")
    console.page.get_by_label("SKU").fill("MILK-1")
    console.page.get_by_label("Name").fill("Whole milk 1l")
    console.page.get_by_label("Price").fill("1.29")
    field = console.page.get_by_label("Barcodes")
    # A scanner types each code and presses Enter: one code per line.
    for code in ("4006381333932", "0" + UPC, "", UPC, "käse"):
        field.press_sequentially(code, delay=5)
        field.press("Enter")
    console.page.get_by_role("button", name="Create product").click()

    expect(field).to_have_attribute("aria-invalid", "true")
    problems = console.page.locator("#barcodes-error li")
    expect(problems).to_have_text(
        [
            "Line 1, 4006381333932: not a valid EAN-13: its check digit (the last) should be 1, "
            "not 2; a digit was misread or mistyped",
            f"Line 4, {UPC}: the same code as line 2 (a UPC-A and its EAN-13 with a leading 0 "
            "are one code); remove one",
            "Line 5, käse: character 2 ('ä') cannot be in a barcode: it holds ASCII letters, "
            "digits, spaces and signs only",
        ]
    )
    console.shoot("products-barcodes-form")
    assert axe_violations(console.page) == []

    field.fill(f"{EAN13}\n0{UPC}\n{EAN8}")
    console.page.get_by_role("button", name="Create product").click()
    expect(console.page.locator("#barcodes-error")).to_have_text(
        f"barcode {EAN8} belongs to product TEA-1"
    )
    expect(console.page.get_by_label("Name")).to_have_value("Whole milk 1l")

    field.fill(f"{EAN13}\n0{UPC}")
    console.page.get_by_role("button", name="Create product").click()
    expect(console.page).to_have_url(console.url("/products/MILK-1?done=created"))
    expect(console.page.locator("ul.barcodes li")).to_have_text([f"{UPC} UPC-A", f"{EAN13} EAN-13"])
    console.page.get_by_role("link", name="Edit").click()
    expect(field).to_have_value(f"{UPC}\n{EAN13}")
    field.fill(EAN13)
    console.page.get_by_role("button", name="Save changes").click()
    expect(console.page.get_by_role("status")).to_have_text("Changes saved.")
    expect(console.page.locator("ul.barcodes li")).to_have_text([f"{EAN13} EAN-13"])


def test_a_clerk_scans_a_barcode_into_the_search_and_finds_the_product(
    console: Console, actors: Actors, container: Container
) -> None:
    _add(container, "MILK-1", "Whole milk 1l", [UPC])
    _add(container, "OATS-1", "Rolled oats 500g", [EAN13])
    _add(container, "SNACK-4006381333931", "Oat bar", [])  # its SKU holds the code too
    console.sign_in(actors.make(Role.CLERK, warehouses=["BER"]))
    console.goto("/products")
    search = console.page.get_by_label("Search SKU or name")

    search.press_sequentially(EAN13, delay=5)  # a keyboard-wedge scanner: fast keys, Enter
    search.press("Enter")

    expect(console.page).to_have_url(console.url(f"/products?q={EAN13}"))
    rows = console.page.locator("#products-results tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("OATS-1")
    expect(rows.nth(0)).to_contain_text("barcode match")
    expect(rows.nth(1)).to_contain_text("SNACK-4006381333931")
    expect(console.page.locator("#products-summary")).to_contain_text(
        f"Barcode {EAN13} is OATS-1's, listed first"
    )
    # A UPC-A read by a scanner as its EAN-13 (a leading 0) is the same code.
    search.fill("0" + UPC)
    search.press("Enter")
    expect(rows).to_have_count(1)
    rows.nth(0).get_by_role("link", name="MILK-1").click()
    expect(console.page).to_have_url(console.url("/products/MILK-1"))
    expect(console.page.locator("ul.barcodes")).to_contain_text(UPC)
