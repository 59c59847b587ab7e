"""The Stock pages in a real browser: receiving, transferring, a blind count, a clerk's limits."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from playwright.sync_api import expect

from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import Container
from storekeeper.catalog import service as catalog
from storekeeper.inventory import history, ledger, levels, warehouses
from tests.browser.conftest import Console, axe_violations
from tests.conftest import Actors
from tests.e2e.test_console_http import _signed_in


def _shop(container: Container, stock: dict[str, int]) -> None:
    """Berlin and Hamburg, and products with ``stock`` units each at BER."""
    with container.db.transaction() as session:
        warehouses.create_warehouse(session, code="BER", name="Berlin", lat=52.52, lon=13.405)
        warehouses.create_warehouse(session, code="HAM", name="Hamburg", lat=53.551, lon=9.993)
        for sku, units in stock.items():
            catalog.create(
                session,
                data={"sku": sku, "name": f"Tea {sku}", "price_cents": 450, "currency": "EUR"},
            )
            ledger.record_movement(session, sku=sku, warehouse="BER", delta=units, reason="receipt")


def _on_hand(container: Container, sku: str, warehouse: str) -> int:
    with container.db.reading() as session:
        return levels.level(session, sku=sku, warehouse=warehouse).on_hand


def _row(console: Console, sku: str) -> str:
    return console.page.get_by_role("row").filter(has_text=sku).inner_text()


def test_receiving_stock_by_scanner_changes_the_level_and_an_unknown_sku_is_said_in_words(
    console: Console, actors: Actors, container: Container
) -> None:
    _shop(container, {"TEA-1": 5})
    console.sign_in(actors.make(Role.MANAGER))
    console.goto("/stock")
    console.page.get_by_role("link", name="BER · Berlin").click()
    expect(console.page.get_by_role("heading", level=1)).to_have_text("BER · Berlin")
    console.shoot("stock-warehouse")
    assert axe_violations(console.page) == []

    # A keyboard-wedge scanner types the code and presses Enter: focus lands on the quantity.
    console.page.locator("#receive-sku").press_sequentially("TEA-1")
    console.page.keyboard.press("Enter")
    expect(console.page.locator("#receive-qty")).to_be_focused()
    console.page.keyboard.type("7")
    console.page.get_by_role("button", name="Receive", exact=True).click()

    expect(console.page.get_by_role("status")).to_have_text("Receipt of TEA-1 recorded.")
    assert re.search(r"TEA-1\s+Tea TEA-1\s+12\s+0\s+12", _row(console, "TEA-1"))
    assert _on_hand(container, "TEA-1", "BER") == 12

    console.page.get_by_label("SKU").first.fill("NOPE-9")
    console.page.get_by_label("Quantity received").fill("1")
    console.page.get_by_role("button", name="Receive", exact=True).click()
    expect(console.page.locator("#receive-sku")).to_have_attribute("aria-invalid", "true")
    expect(console.page.locator("#receive-sku-error")).to_have_text("no product with SKU NOPE-9")


def test_the_levels_filter_by_name_keeps_its_own_address(
    console: Console, actors: Actors, container: Container
) -> None:
    _shop(container, {"TEA-1": 5, "MATE-1": 2})
    console.sign_in(actors.make(Role.MANAGER))
    console.goto("/stock/BER")
    console.page.get_by_label("SKU (start) or product name").fill("no such")
    expect(console.page).to_have_url(re.compile(r"/stock/BER\?q=no(%20|\+)such$"))
    expect(console.page.locator("#levels")).to_contain_text("No stock here matches")
    console.page.get_by_label("SKU (start) or product name").fill("mate")
    expect(console.page.locator("#levels tbody tr")).to_have_count(1)
    expect(console.page.locator("#levels")).to_contain_text("Tea MATE-1")
    csv = console.page.request.get(console.url("/stock/BER?q=mate&format=csv")).text()
    assert csv.splitlines() == ["sku,name,on_hand,reserved,available", "MATE-1,Tea MATE-1,2,0,2"]


def test_a_transfer_moves_units_to_another_warehouse_and_not_more_than_are_available(
    console: Console, actors: Actors, container: Container
) -> None:
    _shop(container, {"TEA-1": 5})
    console.sign_in(actors.make(Role.MANAGER))
    console.goto("/stock/BER")
    transfer = console.page.get_by_role("region", name="Transfer")
    transfer.get_by_label("SKU").fill("TEA-1")
    transfer.get_by_label("Quantity").fill("9")
    transfer.get_by_label("To warehouse").select_option("HAM")
    transfer.get_by_role("button", name="Transfer").click()
    expect(console.page.locator("#transfer-qty-error")).to_contain_text(
        "only 5 of TEA-1 available here"
    )

    console.page.get_by_label("Quantity").fill("2")
    console.page.get_by_role("button", name="Transfer").click()
    expect(console.page.get_by_role("status")).to_have_text("Transfer of TEA-1 recorded.")
    assert re.search(r"TEA-1\s+Tea TEA-1\s+3\s+0\s+3", _row(console, "TEA-1"))
    assert (_on_hand(container, "TEA-1", "BER"), _on_hand(container, "TEA-1", "HAM")) == (3, 2)


def test_a_blind_count_reports_every_invalid_line_at_once_then_posts_all_lines_together(
    console: Console, actors: Actors, container: Container
) -> None:
    _shop(container, {"TEA-1": 5, "TEA-2": 3, "COFFEE-1": 8})
    console.sign_in(actors.make(Role.CLERK, warehouses=["BER"]))
    console.goto("/stock/BER/count")
    console.page.get_by_label("Only SKUs starting with").fill("tea")
    console.page.get_by_label("Blind count").check()
    console.page.get_by_role("button", name="Start count").click()

    sheet = console.page.locator("#count-lines")
    expect(sheet.get_by_role("row")).to_have_count(2)  # TEA-1 and TEA-2, not COFFEE-1
    expect(console.page.get_by_role("columnheader", name="Expected")).to_have_count(0)
    assert axe_violations(console.page) == []
    console.page.get_by_label("Counted TEA-1").fill("-1")
    # Scanning a SKU on the sheet goes to its line; one not on the sheet gets a new line.
    scan = console.page.get_by_label("Scan or type a SKU")
    scan.press_sequentially("TEA-2")
    scan.press("Enter")
    expect(console.page.get_by_label("Counted TEA-2")).to_be_focused()
    console.page.keyboard.type("7")
    console.page.keyboard.press("Enter")  # back to the scan field for the next item
    expect(scan).to_be_focused()
    scan.press_sequentially("NOPE-9")
    scan.press("Enter")
    expect(console.page.get_by_label("Counted NOPE-9")).to_be_focused()
    console.page.keyboard.type("2")
    console.page.get_by_role("button", name="Review").click()

    alert = console.page.get_by_role("alert")
    expect(alert).to_contain_text("2 problems: nothing was recorded")
    expect(alert).to_contain_text("Line 1 (TEA-1): the count -1 is negative")
    expect(alert).to_contain_text("Line 3 (NOPE-9): no product with SKU NOPE-9")
    expect(console.page.get_by_label("Counted TEA-1")).to_have_attribute("aria-invalid", "true")
    expect(console.page.get_by_label("Counted TEA-2")).to_have_value("7")
    # The review shows what the records expect and the variance, even of a blind count.
    assert re.search(r"TEA-2\s+3\s+Counted TEA-2\s+\+4\s+Tea TEA-2", _row(console, "TEA-2"))
    console.shoot("stock-count-review")
    assert axe_violations(console.page) == []
    assert _on_hand(container, "TEA-1", "BER") == 5

    console.page.get_by_label("Counted TEA-1").fill("4")
    console.page.get_by_role("button", name="Remove line 3 (NOPE-9)").click()
    expect(console.page.get_by_role("status").first).to_contain_text("Total variance: +3")
    console.page.get_by_role("button", name="Post 2 counts").click()

    expect(console.page).to_have_url(re.compile(r"/stock/BER\?done=count"))
    expect(console.page.get_by_role("status")).to_have_text("Count posted: 2 lines recorded.")
    assert (_on_hand(container, "TEA-1", "BER"), _on_hand(container, "TEA-2", "BER")) == (4, 7)
    with container.db.reading() as session:
        moves, _ = history.list_movements(session, warehouses=["BER"], limit=2)
    assert {(m.sku, m.delta, m.reason, m.ref is not None) for m in moves} == {
        ("TEA-1", -1, "count", True),
        ("TEA-2", 4, "count", True),
    }


def test_a_clerk_of_berlin_can_neither_open_hamburg_nor_receive_there(
    console: Console, actors: Actors, container: Container
) -> None:
    _shop(container, {"TEA-1": 5})
    console.sign_in(actors.make(Role.CLERK, warehouses=["BER"]))
    console.goto("/stock")
    expect(console.page.get_by_role("link", name="BER · Berlin")).to_be_visible()
    expect(console.page.get_by_role("link", name=re.compile("HAM"))).to_have_count(0)

    answer = console.page.goto(console.url("/stock/HAM"))
    assert answer is not None and answer.status == 403
    expect(console.page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(console.page.get_by_role("alert")).to_contain_text("not assigned to warehouse HAM")

    console.goto("/stock/BER")
    # The transfer form offers no warehouse the clerk is not assigned to.
    expect(console.page.get_by_role("region", name="Transfer")).to_contain_text(
        "no other warehouse you may send to"
    )
    token = console.page.locator('input[name="csrf_token"]').first.input_value()
    posted = console.page.request.post(
        console.url("/stock/HAM/receive"),
        form={"csrf_token": token, "sku": "TEA-1", "qty": "3"},
        max_redirects=0,
    )
    assert posted.status == 403
    assert "not assigned to warehouse HAM" in posted.text()
    assert _on_hand(container, "TEA-1", "HAM") == 0


def test_without_javascript_the_scan_field_adds_a_line_or_points_to_it_on_the_server(
    client: TestClient, actors: Actors, container: Container
) -> None:
    _shop(container, {"TEA-1": 5})
    csrf = _signed_in(client, actors.make(Role.MANAGER))
    sheet = {"csrf_token": csrf, "stage": "sheet", "sku": ["TEA-1"], "counted": ["4"]}

    added = client.post("/stock/BER/count", data={**sheet, "add_sku": "MATE-9"})
    present = client.post("/stock/BER/count", data={**sheet, "add_sku": "TEA-1"})

    assert added.status_code == 200
    assert re.findall(r'<tr data-sku="([^"]+)"', added.text) == ["TEA-1", "MATE-9"]
    assert re.search(r'id="counted-2"[^>]*autofocus', added.text)
    assert re.findall(r'name="counted" value="([^"]*)"', added.text)[:2] == ["4", ""]
    assert "TEA-1 is on line 1" in present.text
    assert re.search(r'id="counted-1"[^>]*autofocus', present.text)
