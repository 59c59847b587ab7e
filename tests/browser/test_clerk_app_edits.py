"""The clerk app's product edits (last writer wins; managers and admins only), adjustments with
a reason, and the list of open sync exceptions, in a real browser at a phone's size
(docs/clerk-app.md)."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from storekeeper.accounts import users
from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import Container
from storekeeper.inventory import history
from tests.browser import test_clerk_app
from tests.browser.conftest import axe_violations
from tests.browser.test_clerk_app import ClerkApp, _signed_in_at_ber
from tests.conftest import Actors, LiveServer
from tests.tea_shop import ledger_sum, on_hand, tea_shop

app = test_clerk_app.app  # the phone-sized tab on the app, failing on a page error


def _small_targets(page: Page) -> list[str]:
    """Visible controls lower or narrower than 44 CSS pixels (a checkbox counts by its label)."""
    return list(
        page.evaluate(
            """() => [...document.querySelectorAll("button, input, select, summary")]
                .filter((e) => e.getClientRects().length && e.type !== "checkbox")
                .map((e) => [e.id || e.textContent.trim(), e.getBoundingClientRect()])
                .filter(([, r]) => r.height < 44 || r.width < 44)
                .map(([name, r]) => `${name}: ${r.width}x${r.height}`)"""
        )
    )


def test_a_product_edited_offline_is_shown_pending_and_a_later_edit_wins(
    app: ClerkApp, actors: Actors, container: Container, live_server: LiveServer
) -> None:
    tea_shop(container, {"TEA-1": 10, "MATE-1": 4})
    manager = actors.make(Role.MANAGER)
    _signed_in_at_ber(app, manager)
    page = app.page

    app.offline(True)
    app.find("TEA-1")  # a keyboard-wedge scanner: the code and Enter
    expect(page.locator("#chosen-price")).to_have_text("Price 4.50 EUR")
    page.get_by_text("Edit name or price").focus()
    page.keyboard.press("Enter")  # the disclosure opens from the keyboard
    page.get_by_label("Name", exact=True).fill("Tea (phone)")
    page.get_by_label("Price (EUR)").fill("4,80")
    page.get_by_label("Price (EUR)").press("Enter")
    expect(page.locator("#chosen-name")).to_have_text("Tea (phone)")
    expect(page.locator("#chosen-price")).to_have_text("Price 4.80 EUR")
    expect(page.locator("#chosen-edit")).to_have_text(
        "Edit pending: name “Tea (phone)”, price 4.80 (server: “Tea TEA-1”, 4.50 EUR)"
    )
    expect(page.locator("#pending")).to_contain_text("Edit TEA-1: name “Tea (phone)”, price 4.80")
    app.page.get_by_label("Name, SKU or barcode").fill("phone")  # lookups see the pending name
    expect(page.locator("#matches")).to_contain_text("Tea (phone) · TEA-1")
    app.shoot("clerk-app-edit")
    assert axe_violations(page) == []
    assert _small_targets(page) == []

    # Meanwhile the office renames it: a server edit, later than the phone's offline stamp.
    renamed = httpx.patch(
        f"{live_server.url}/api/v1/products/TEA-1",
        json={"name": "Tea (office)"},
        headers=manager.headers,
        timeout=10,
    )
    assert renamed.status_code == 200, renamed.text

    app.offline(False)  # syncs by itself
    lost = page.locator("#verdicts .status-conflict")
    expect(lost).to_contain_text("conflict (edit lost): Edit TEA-1: name “Tea (phone)”, price 4.80")
    expect(lost).to_contain_text("a later edit of name won")
    expect(page.locator("#chosen-name")).to_have_text("Tea (office)")
    expect(page.locator("#chosen-price")).to_have_text("Price 4.80 EUR")  # nobody else's price
    expect(page.locator("#chosen-edit")).to_have_text(
        "Your edit of name lost to a newer one; your price was applied."
    )
    expect(page.locator("#pending")).to_have_text("Nothing waiting.")
    expect(page.get_by_label("Name", exact=True)).to_have_value("Tea (office)")  # the winner
    app.find("MATE-1")
    app.find("TEA-1")  # the lost edit stays visible on the product
    expect(page.locator("#chosen-edit")).to_contain_text("Your edit of name lost")
    app.shoot("clerk-app-edit-lost")
    product = httpx.get(
        f"{live_server.url}/api/v1/products/TEA-1", headers=manager.headers, timeout=10
    ).json()
    assert (product["name"], product["price_cents"]) == ("Tea (office)", 480)


def test_a_clerk_is_told_that_product_edits_need_a_manager(
    app: ClerkApp, actors: Actors, container: Container
) -> None:
    tea_shop(container, {"TEA-1": 10}, hamburg=0)
    _signed_in_at_ber(app, actors.make(Role.CLERK, warehouses=["BER"]))
    app.find("TEA-1")
    app.page.get_by_text("Edit name or price").click()
    expect(app.page.locator("#edit-refused")).to_have_text(
        "Only managers and admins can edit products: the server refuses product edits from "
        "your account."
    )
    expect(app.page.get_by_role("button", name="Save edit")).to_be_disabled()
    expect(app.page.get_by_label("Name", exact=True)).to_be_disabled()
    assert axe_violations(app.page) == []


def test_an_edit_the_server_refuses_says_so_on_the_product_and_in_the_verdicts(
    app: ClerkApp, actors: Actors, container: Container
) -> None:
    tea_shop(container, {"TEA-1": 10})
    manager, admin = actors.make(Role.MANAGER), actors.make(Role.ADMIN)
    _signed_in_at_ber(app, manager)
    app.offline(True)
    app.find("TEA-1")
    app.page.get_by_text("Edit name or price").click()
    app.page.get_by_label("Price (EUR)").fill("5")
    app.page.get_by_role("button", name="Save edit").click()
    expect(app.page.locator("#chosen-edit")).to_contain_text("Edit pending: price 5.00")
    with container.db.transaction() as session:  # meanwhile the account became a clerk's
        users.update(
            session,
            user_id=manager.id,
            role=Role.CLERK,
            is_active=None,
            warehouses=["BER"],
            actor_id=admin.id,
        )

    app.offline(False)
    refused = app.page.locator("#verdicts .status-rejected")
    expect(refused).to_contain_text(
        "rejected: Edit TEA-1: price 5.00 — only managers and admins edit products"
    )
    expect(app.page.locator("#chosen-edit")).to_have_text(
        "Your edit was refused: only managers and admins edit products, online or offline"
    )
    expect(app.page.locator("#chosen-price")).to_have_text("Price 4.50 EUR")


def test_an_adjustment_with_a_reason_is_queued_offline_and_applied_once(
    app: ClerkApp, actors: Actors, container: Container
) -> None:
    tea_shop(container, {"TEA-1": 10}, hamburg=0)
    _signed_in_at_ber(app, actors.make(Role.CLERK, warehouses=["BER"]))
    page = app.page

    app.offline(True)
    app.find("TEA-1")
    page.get_by_text("Adjust: write-off or correction").click()
    page.get_by_label("Reason").select_option(label="Damaged: write off")
    page.get_by_label("Units").fill("3")
    page.get_by_label("Units").press("Enter")  # the keyboard submits
    expect(page.locator("#pending")).to_contain_text("Adjust TEA-1 -3 (damage)")
    page.get_by_label("Reason").select_option(label="Correction: more than recorded")
    page.get_by_label("Units").fill("1")
    page.get_by_role("button", name="Record adjustment").click()
    expect(page.locator("#pending li")).to_have_count(2)
    expect(page.locator("#pending")).to_contain_text("Adjust TEA-1 +1 (correction)")
    expect(page.locator("#chosen-stock")).to_contain_text("On hand 8 (server 10, 2 pending: -2)")
    app.shoot("clerk-app-adjust")
    page.get_by_label("Units").fill("0")
    page.get_by_role("button", name="Record adjustment").click()
    expect(page.locator("#adjust-error")).to_have_text(
        "Enter the units as a whole number, 1 or more."
    )
    expect(page.locator("#pending li")).to_have_count(2)
    assert axe_violations(page) == []
    assert _small_targets(page) == []

    app.offline(False)
    expect(page.locator("#verdicts .status-applied")).to_have_count(2)
    expect(page.locator("#chosen-stock")).to_contain_text("On hand 8 · available 8")
    assert (on_hand(container, "TEA-1"), ledger_sum(container, "TEA-1")) == (8, 8)
    with container.db.reading() as session:
        movements, _ = history.list_movements(session, sku="TEA-1", limit=2)
    assert sorted(m.reason for m in movements) == ["correction", "damage"]


def test_open_sync_exceptions_of_this_device_are_listed_and_read_offline(
    app: ClerkApp, actors: Actors, container: Container, live_server: LiveServer
) -> None:
    tea_shop(container, {"TEA-1": 3}, hamburg=0)
    _signed_in_at_ber(app, actors.make(Role.CLERK, warehouses=["BER"]))
    page = app.page
    opener = page.get_by_role("button", name="Open sync exceptions")
    expect(opener).to_have_text("Open sync exceptions (0)")

    app.offline(True)
    app.find("TEA-1")
    app.move("Sell", 5)
    app.offline(False)
    expect(page.locator("#verdicts .status-conflict")).to_contain_text("Sell 5 of TEA-1")
    expect(opener).to_have_text("Open sync exceptions (1)")  # fetched after the sync

    opener.click()
    expect(page.get_by_role("heading", name="Open sync exceptions")).to_be_focused()
    listed = page.locator("#exceptions-list li")
    expect(listed).to_have_count(1)
    expect(listed).to_contain_text("Sale of TEA-1: 5 taken off, 3 applied, 2 short")
    app.shoot("clerk-app-exceptions")
    assert axe_violations(page) == []
    assert _small_targets(page) == []
    page.get_by_role("button", name="Back").click()
    expect(opener).to_be_focused()

    app.offline(True)
    page.reload()  # offline: the list comes from the last fetch
    opener.click()
    expect(listed).to_contain_text("Sale of TEA-1: 5 taken off, 3 applied, 2 short")
    expect(page.locator("#exceptions-asof")).to_contain_text("As of ")
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator("#exceptions-error")).to_have_text(
        "Offline: this is the list of the last fetch."
    )

    app.offline(False)
    manager = actors.make(Role.MANAGER)
    (exception,) = httpx.get(
        f"{live_server.url}/api/v1/sync/exceptions",
        params={"status": "open"},
        headers=manager.headers,
        timeout=10,
    ).json()["items"]
    resolved = httpx.post(
        f"{live_server.url}/api/v1/sync/exceptions/{exception['id']}/resolve",
        json={"note": "a broken box"},
        headers=manager.headers,
        timeout=10,
    )
    assert resolved.status_code == 200, resolved.text
    page.get_by_role("button", name="Refresh").click()
    expect(listed).to_have_text("No open exceptions from this device.")
    expect(page.locator("#exceptions-error")).to_be_empty()
