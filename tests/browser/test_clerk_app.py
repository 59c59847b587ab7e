"""The clerk's offline app at /app/ in a real browser: the shell offline, selling and receiving
offline then syncing, a sale beyond stock, the scanner path (docs/clerk-app.md)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Request, expect

from storekeeper.accounts import sessions
from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import Container
from storekeeper.inventory import history
from tests.browser.conftest import PHONE, SCREENSHOTS, Console, _note_response, axe_violations
from tests.conftest import Actor, Actors, LiveServer
from tests.tea_shop import ledger_sum, on_hand, tea_shop

# Chromium logs a failed fetch while the context is offline (the service worker's update check
# of sw.js on a reload) and every 4xx answer (a 401 the app handles); neither is a page bug.
_OFFLINE_NOISE = re.compile(
    r"ERR_INTERNET_DISCONNECTED|ERR_FAILED|update a ServiceWorker|"
    r"Failed to load resource: the server responded with a status of 4"
)


class ClerkApp(Console):
    """A phone-sized tab on the app, with the sync pushes it sent."""

    pushes: list[str]

    def open(self) -> None:
        """Open /app/ and wait until its service worker controls it and its shell is cached."""
        self.page.goto(self.url("/app/"))
        self.page.wait_for_selector("body[data-ready]")
        # Not wait_for_function: its polling evaluates a string, which the app's CSP refuses.
        self.page.evaluate(
            """() => navigator.serviceWorker.ready.then(() => navigator.serviceWorker.controller
                || new Promise((done) => navigator.serviceWorker.addEventListener(
                    "controllerchange", () => done(true))))"""
        )

    def offline(self, offline: bool) -> None:
        """Cut (or restore) the network of the whole context."""
        self.page.context.set_offline(offline)

    def sign_in_app(self, actor: Actor) -> None:
        """The app's sign-in form, then the warehouse pick of the first pull."""
        self.page.get_by_label("E-mail").fill(actor.email)
        self.page.get_by_label("Password").fill(actor.password)
        self.page.get_by_role("button", name="Sign in").click()

    def find(self, code: str) -> None:
        """Type a code into the lookup field and press Enter, as a keyboard-wedge scanner."""
        self.page.get_by_label("Name, SKU or barcode").fill(code)
        self.page.get_by_label("Name, SKU or barcode").press("Enter")

    def move(self, action: str, qty: int) -> None:
        """Sell or receive ``qty`` of the chosen product; waits until it is queued."""
        waiting = self.page.locator("#pending-count")
        queued = int(waiting.inner_text().strip("()") or 0)
        self.page.get_by_label("Quantity", exact=True).fill(str(qty))
        self.page.get_by_role("button", name=action, exact=True).click()
        expect(waiting).not_to_have_text(f"({queued})")

    def shoot(self, name: str) -> None:
        """A phone screenshot (the app is phone first)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}-phone.png"), full_page=True)


@pytest.fixture
def app(browser: Browser, live_server: LiveServer) -> Iterator[ClerkApp]:
    """A fresh phone-sized context on a live server; fails the test on a JS error or CSP report."""
    context: BrowserContext = browser.new_context(viewport=PHONE, service_workers="allow")
    context.set_default_timeout(15_000)
    page = context.new_page()
    tab = ClerkApp(page=page, server=live_server)
    tab.pushes = []

    def note(text: str, kind: str) -> None:
        if kind == "error" and not _OFFLINE_NOISE.search(text):
            tab.problems.append(text)

    def pushed(request: Request) -> None:
        if request.url.endswith("/api/v1/sync/push"):
            tab.pushes.append(request.post_data or "")

    page.on("console", lambda message: note(message.text, message.type))
    page.on("response", lambda response: _note_response(tab.problems, response))
    page.on("pageerror", lambda error: tab.problems.append(f"page error: {error}"))
    page.on("request", pushed)
    yield tab
    context.close()
    assert not tab.problems, tab.problems


def _signed_in_at_ber(app: ClerkApp, clerk: Actor) -> None:
    app.open()
    app.sign_in_app(clerk)
    select = app.page.get_by_label("Warehouse")
    expect(select.locator("option")).to_have_count(1)  # a clerk sees only their warehouses
    app.page.get_by_role("button", name="Use this warehouse").click()
    expect(app.page.locator("#where")).to_have_text("Warehouse BER")
    expect(app.page.locator("#banner")).to_contain_text("Online")


def test_the_app_shell_opens_offline_after_a_reload(app: ClerkApp) -> None:
    app.open()
    shell = app.page.request.get(app.url("/app/"))
    assert "worker-src 'self'" in shell.headers["content-security-policy"]
    assert shell.headers["cache-control"] == "no-cache"
    worker = app.page.request.get(app.url("/app/sw.js"))
    assert worker.headers["service-worker-allowed"] == "/app/"
    assert "__SHELL_HASH__" not in worker.text()
    manifest = app.page.request.get(app.url("/app/manifest.webmanifest"))
    assert manifest.headers["content-type"] == "application/manifest+json"
    assert manifest.json()["start_url"] == "/app/"
    expect(app.page.get_by_role("heading", name="Sign in")).to_be_visible()
    app.shoot("clerk-app-sign-in")
    assert axe_violations(app.page) == []

    app.offline(True)
    app.page.reload()
    expect(app.page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(app.page.locator("#banner")).to_contain_text("Offline")


def test_sales_and_receipts_made_offline_survive_a_reload_and_sync_once(
    app: ClerkApp, actors: Actors, container: Container
) -> None:
    tea_shop(container, {"TEA-1": 10, "MATE-1": 4}, hamburg=0)
    clerk = actors.make(Role.CLERK, warehouses=["BER"])
    _signed_in_at_ber(app, clerk)

    app.offline(True)
    expect(app.page.locator("#banner")).to_contain_text("Offline")
    app.find("tea-1")  # the scanner path: an exact SKU + Enter chooses the product
    expect(app.page.locator("#chosen-stock")).to_contain_text("On hand 10")
    app.move("Sell", 2)
    app.move("Receive", 5)
    expect(app.page.locator("#chosen-stock")).to_contain_text("On hand 13 (server 10, 2 pending")
    app.shoot("clerk-app-offline")
    assert axe_violations(app.page) == []

    app.page.reload()  # offline: the shell from the service worker, the queue from IndexedDB
    expect(app.page.locator("#pending li")).to_have_count(2)
    expect(app.page.locator("#pending")).to_contain_text("Sell 2 of TEA-1")
    assert app.pushes == []
    assert on_hand(container, "TEA-1") == 10

    app.offline(False)  # the online event syncs on its own; the button does the same
    expect(app.page.locator("#verdicts .status-applied")).to_have_count(2)
    expect(app.page.locator("#pending")).to_have_text("Nothing waiting.")
    assert on_hand(container, "TEA-1") == 13
    assert ledger_sum(container, "TEA-1") == 13
    assert len(app.pushes) == 1

    app.page.get_by_role("button", name="Sync now").click()
    expect(app.page.locator("#banner")).not_to_contain_text("Syncing")
    expect(app.page.get_by_role("button", name="Sync now")).to_be_enabled()
    assert len(app.pushes) == 1  # nothing queued: nothing pushed
    assert on_hand(container, "TEA-1") == 13


def test_a_sale_beyond_stock_shows_the_servers_verdict_and_a_count_is_a_delta(
    app: ClerkApp, actors: Actors, container: Container
) -> None:
    tea_shop(container, {"TEA-1": 3, "MATE-1": 4}, hamburg=0)
    _signed_in_at_ber(app, actors.make(Role.CLERK, warehouses=["BER"]))

    app.offline(True)
    app.find("TEA-1")
    app.move("Sell", 5)
    expect(app.page.locator("#chosen-stock")).to_contain_text("On hand -2")

    app.page.get_by_label("Blind count (hide the expected on-hand)").check()
    app.page.get_by_label("SKU or barcode", exact=True).fill("MATE-1")
    app.page.get_by_label("SKU or barcode", exact=True).press("Enter")
    expect(app.page.get_by_label("Counted quantity")).to_be_focused()
    app.page.keyboard.type("6")
    app.page.keyboard.press("Enter")
    expect(app.page.locator("#count-lines")).to_have_text(re.compile(r"MATE-1: counted 6\s+Remove"))
    app.shoot("clerk-app-count")
    app.page.get_by_role("button", name="Submit count").click()
    expect(app.page.locator("#pending li")).to_have_count(2)

    app.offline(False)
    conflict = app.page.locator("#verdicts .status-conflict")
    expect(conflict).to_contain_text("conflict: Sell 5 of TEA-1")
    expect(app.page.locator("#verdicts .status-applied")).to_contain_text("Count MATE-1: 6")
    app.shoot("clerk-app-verdicts")
    assert on_hand(container, "TEA-1") == 0  # the server took what it had; the rest is flagged
    assert on_hand(container, "MATE-1") == 6
    assert ledger_sum(container, "MATE-1") == 6


def test_a_server_that_cannot_be_reached_is_said_and_tried_again_by_itself(
    app: ClerkApp, actors: Actors, container: Container
) -> None:
    tea_shop(container, {"TEA-1": 10}, hamburg=0)
    _signed_in_at_ber(app, actors.make(Role.CLERK, warehouses=["BER"]))
    # The device has a network, the server does not answer: no `online` event will come.
    app.page.route("**/api/v1/sync/**", lambda route: route.abort())
    app.find("TEA-1")
    app.move("Sell", 1)  # a change made online starts a sync, which cannot reach the server
    banner = app.page.locator("#banner")
    expect(banner).to_contain_text("Server unreachable: your changes are kept on this device")
    expect(app.page.locator("#pending li")).to_have_count(1)

    app.page.unroute("**/api/v1/sync/**")  # the server is back: the app finds out by itself
    expect(app.page.locator("#verdicts .status-applied")).to_have_count(1, timeout=30_000)
    expect(banner).to_contain_text("Online")
    assert on_hand(container, "TEA-1") == 9


def test_an_ended_session_asks_to_sign_in_again_and_keeps_the_queue(
    app: ClerkApp, actors: Actors, container: Container
) -> None:
    tea_shop(container, {"TEA-1": 10}, hamburg=0)
    clerk = actors.make(Role.CLERK, warehouses=["BER"])
    _signed_in_at_ber(app, clerk)
    with container.db.transaction() as session:  # e.g. the password was changed elsewhere
        sessions.revoke_all(session, user_id=clerk.id, reason="password_changed")

    app.find("TEA-1")
    app.move("Sell", 1)  # online: a sync starts at once, its push is refused, refresh too
    expect(app.page.get_by_role("alert").filter(has_text="Session ended")).to_be_visible()
    expect(app.page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert on_hand(container, "TEA-1") == 10

    app.sign_in_app(clerk)
    expect(app.page.locator("#verdicts .status-applied")).to_contain_text("Sell 1 of TEA-1")
    expect(app.page.get_by_role("alert").filter(has_text="Session ended")).to_be_hidden()
    assert on_hand(container, "TEA-1") == 9


def test_changes_left_by_another_clerk_are_not_pushed_under_a_new_sign_in_unless_asked(
    app: ClerkApp, actors: Actors, container: Container
) -> None:
    tea_shop(container, {"TEA-1": 10}, hamburg=0)
    first, second = (actors.make(Role.CLERK, warehouses=["BER"]) for _ in range(2))
    _signed_in_at_ber(app, first)
    app.offline(True)
    app.find("TEA-1")
    app.move("Sell", 1)
    app.page.get_by_role("button", name="Sign out").click()
    app.offline(False)

    app.sign_in_app(second)  # the device's queue holds the first clerk's sale
    refusal = app.page.locator("#signin-error")
    expect(refusal).to_contain_text(f"1 change(s) made by {first.email} are waiting")
    expect(app.page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert on_hand(container, "TEA-1") == 10

    app.page.get_by_label(f"Send the 1 waiting change(s) of {first.email} under my account").check()
    app.sign_in_app(second)
    expect(app.page.locator("#verdicts .status-applied")).to_contain_text("Sell 1 of TEA-1")
    assert on_hand(container, "TEA-1") == 9
    with container.db.reading() as session:
        (movement,) = history.list_movements(session, sku="TEA-1", limit=1)[0]
    assert movement.actor_id == str(second.id)
