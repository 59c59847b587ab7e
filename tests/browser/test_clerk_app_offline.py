"""The clerk app offline for real (docs/clerk-app.md, "Offline"): the server process stopped
and the browser closed and started again on the same profile; the browser killed (SIGKILL) in
the middle of a pull, and between a push being applied and its answer. Each time the app opens
from its service worker with its copy and queue intact, and syncs to exactly the server's
state: every mutation applied once, the on-hand equal to the ledger's sum."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from playwright.sync_api import (
    BrowserContext,
    Error,
    Page,
    Playwright,
    Request,
    Response,
    Route,
    expect,
    sync_playwright,
)

from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import Container
from storekeeper.catalog import service as catalog
from storekeeper.config import Settings
from storekeeper.inventory import history, ledger
from tests.browser.conftest import CHROMIUM, PHONE, _note_response
from tests.browser.test_clerk_app import ClerkApp
from tests.conftest import Actor, Actors, LiveServer, start_server, stop_server
from tests.tea_shop import ledger_sum, on_hand, tea_shop

PULL = "/api/v1/sync/pull"
PUSH = "/api/v1/sync/push"

# Besides what test_clerk_app tolerates: every fetch to a stopped server is refused, and a killed
# browser's requests in flight are aborted. Neither is a page bug.
_NOISE = re.compile(
    r"ERR_INTERNET_DISCONNECTED|ERR_CONNECTION_REFUSED|ERR_ABORTED|update a ServiceWorker|"
    r"Failed to load resource: the server responded with a status of 4"
)


def _browser_pids(profile: Path) -> list[int]:
    """The Chromium browser process(es) on ``profile`` (not its renderers or helpers)."""
    found = []
    flag = f"--user-data-dir={profile}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if flag in argv and not any(a.startswith(b"--type=") for a in argv):
            found.append(int(entry.name))
    return found


@dataclass
class Device:
    """A phone's Chromium with a profile on disk: closed, killed and started again at will."""

    playwright: Playwright
    profile: Path
    server: LiveServer
    context: BrowserContext | None = None
    problems: list[str] = field(default_factory=list)
    wire: list[tuple[str, str]] = field(default_factory=list)

    def launch(self, *, offline: bool = False) -> ClerkApp:
        """Start Chromium on the profile and open one tab (not yet on the app)."""
        self.context = self.playwright.chromium.launch_persistent_context(
            user_data_dir=self.profile,
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
            viewport=PHONE,
            service_workers="allow",
            offline=offline,
        )
        self.context.set_default_timeout(20_000)
        page = self.context.pages[0] if self.context.pages else self.context.new_page()
        page.on("console", lambda m: self._console(m.text, m.type))
        page.on("response", self._response)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        tab = ClerkApp(page=page, server=self.server)
        tab.pushes = []
        page.on("request", lambda r: self._request(tab, r))
        return tab

    def _console(self, text: str, kind: str) -> None:
        if kind == "error" and not _NOISE.search(text):
            self.problems.append(text)

    def _request(self, tab: ClerkApp, request: Request) -> None:
        if request.url.endswith(PUSH):
            tab.pushes.append(request.post_data or "")

    def _response(self, response: Response) -> None:
        _note_response(self.problems, response)
        if response.url.endswith(PUSH) and response.status == 200:
            try:
                results = json.loads(response.body())["results"]
            except Error:
                return  # the browser went away before the body arrived
            self.wire += [(str(r["id"]), str(r["status"])) for r in results]

    def close(self) -> None:
        """Close the browser the ordinary way."""
        if self.context is not None:
            self.context.close()
            self.context = None

    def kill(self) -> None:
        """SIGKILL the browser process, as a crash or the OS would; nothing gets to clean up."""
        pids = _browser_pids(self.profile)
        assert len(pids) == 1, pids
        os.kill(pids[0], signal.SIGKILL)
        deadline = time.monotonic() + 20
        while _browser_pids(self.profile) and time.monotonic() < deadline:
            time.sleep(0.05)  # the process table, not the page: nothing to await
        assert not _browser_pids(self.profile)
        if self.context is not None:
            with contextlib.suppress(Error):  # Playwright saw its browser die
                self.context.close()
        self.context = None


@dataclass
class Servers:
    """The test's server processes: stopped and started again on the same port and database."""

    settings: Settings
    log: Path
    port: int
    running: LiveServer | None = None

    def stop(self) -> None:
        if self.running is not None:
            stop_server(self.running)
            self.running = None

    def start(self) -> LiveServer:
        assert self.running is None
        self.running = start_server(self.settings, self.log, port=self.port)
        return self.running


@pytest.fixture
def servers(settings: Settings, tmp_path: Path) -> Iterator[Servers]:
    """A live server that the test may stop and start again at the same address."""
    first = start_server(settings, tmp_path / "server.log")
    held = Servers(settings, tmp_path / "server.log", int(first.url.rsplit(":", 1)[1]), first)
    yield held
    held.stop()


@pytest.fixture
def device(servers: Servers, tmp_path: Path) -> Iterator[Device]:
    """A Chromium with a persistent profile on the test's server; fails on a page error."""
    if not Path(CHROMIUM).exists():
        pytest.skip("no Chromium: apt-get install chromium chromium-driver")
    assert servers.running is not None
    with sync_playwright() as playwright:
        phone = Device(playwright, tmp_path / "profile", servers.running)
        yield phone
        with contextlib.suppress(Error):  # a browser the test killed is closed already
            phone.close()
    assert not phone.problems, phone.problems


def _movements(container: Container, sku: str) -> int:
    with container.db.reading() as session:
        rows, _ = history.list_movements(session, sku=sku, warehouses=["BER"], limit=100)
    return len(rows)


def _until(page: Page, condition: Callable[[], bool]) -> None:
    """Wait for a condition that Playwright's own handlers make true (a route handler runs
    only while the test waits inside a Playwright call)."""
    deadline = time.monotonic() + 20
    while not condition() and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert condition()


def _signed_in_at_ber(app: ClerkApp, clerk: Actor) -> None:
    app.open()
    app.sign_in_app(clerk)
    app.page.get_by_role("button", name="Use this warehouse").click()
    expect(app.page.locator("#where")).to_have_text("Warehouse BER")
    expect(app.page.locator("#banner")).to_contain_text("Online")


def _reopened(app: ClerkApp) -> None:
    """Open /app/ in a fresh browser: from the service worker when the server is away."""
    app.page.goto(app.url("/app/"))
    app.page.wait_for_selector("body[data-ready]")
    expect(app.page.locator("#where")).to_have_text("Warehouse BER")


# Runs inside the page: the app's own store module on its IndexedDB.
_LOCAL_COPY = """async () => {
  const { Store } = await import("/app/store.js");
  const store = await Store.open();
  return {
    products: await store.products(),
    stock: await store.stockRows(),
    cursor: (await store.getMeta("cursor")) ?? null,
  };
}"""


def _local_copy(page: Page) -> dict[str, Any]:
    copy: dict[str, Any] = page.evaluate(_LOCAL_COPY)
    return copy


def _servers_copy(server: LiveServer, clerk: Actor) -> dict[str, dict[str, Any]]:
    """The scope as a fresh replica would hold it: a full pull with the clerk's token."""
    rows: dict[str, dict[str, Any]] = {"product": {}, "stock": {}}
    params: dict[str, str | int] = {"scope": "warehouse:BER", "limit": 1000}
    while True:
        page = httpx.get(server.url + PULL, params=params, headers=clerk.headers, timeout=10)
        page.raise_for_status()
        body = page.json()
        for change in body["changes"]:
            if change["entity"] not in rows:
                continue
            if change["op"] == "delete" or change["data"] is None:
                rows[change["entity"]].pop(change["key"], None)
            else:
                rows[change["entity"]][change["key"]] = {**change["data"], "sku": change["key"]}
        if not body["has_more"]:
            return rows
        params["since"] = body["cursor"]


def test_work_done_with_the_server_down_survives_a_browser_restart_and_syncs_once(
    device: Device, servers: Servers, actors: Actors, container: Container
) -> None:
    tea_shop(container, {"TEA-1": 10, "MATE-1": 4}, hamburg=1)
    clerk = actors.make(Role.CLERK, warehouses=["BER"])
    app = device.launch()
    _signed_in_at_ber(app, clerk)

    servers.stop()  # the server is gone, though the browser still thinks it is online
    app.find("TEA-1")
    app.move("Sell", 2)
    app.move("Receive", 5)
    expect(app.page.locator("#chosen-stock")).to_contain_text("On hand 13 (server 10, 2 pending")
    expect(app.page.locator("#banner")).not_to_contain_text("Syncing")
    device.close()

    app = device.launch()  # the server still down: the shell from the service worker
    _reopened(app)
    expect(app.page.locator("#pending li")).to_have_count(2)
    expect(app.page.locator("#pending")).to_contain_text("Sell 2 of TEA-1")
    expect(app.page.locator("#pending")).to_contain_text("Receive 5 of TEA-1")
    app.find("TEA-1")
    expect(app.page.locator("#chosen-stock")).to_contain_text("On hand 13 (server 10, 2 pending")
    assert on_hand(container, "TEA-1") == 10

    servers.start()  # same address, same database
    app.page.get_by_role("button", name="Sync now").click()
    expect(app.page.locator("#verdicts .status-applied")).to_have_count(2)
    expect(app.page.locator("#pending")).to_have_text("Nothing waiting.")
    expect(app.page.locator("#chosen-stock")).to_contain_text("On hand 13 · available 13")
    assert [status for _, status in device.wire] == ["applied", "applied"]
    assert on_hand(container, "TEA-1") == 13
    assert ledger_sum(container, "TEA-1") == 13
    assert _movements(container, "TEA-1") == 3  # the first receipt, then one row per mutation


def test_a_browser_killed_in_the_middle_of_a_pull_resumes_and_converges(
    device: Device, actors: Actors, container: Container
) -> None:
    tea_shop(container, {f"TEA-{n:02}": n for n in range(1, 13)}, hamburg=1)
    clerk = actors.make(Role.CLERK, warehouses=["BER"])
    app = device.launch()
    app.open()
    app.sign_in_app(clerk)

    pulls: list[str] = []

    def small_pages(route: Route) -> None:
        # Pages of 3 rows, and the third one never answered: the browser dies waiting for it.
        pulls.append(route.request.url)
        if len(pulls) >= 3:
            return
        url = urlsplit(route.request.url)
        query = dict(parse_qsl(url.query)) | {"limit": "3"}
        route.continue_(url=url._replace(query=urlencode(query)).geturl())

    app.page.route(f"**{PULL}*", small_pages)
    app.page.get_by_role("button", name="Use this warehouse").click()
    _until(app.page, lambda: len(pulls) == 3)  # two pages stored, the third one hangs
    expect(app.page.locator("#pull-count")).to_have_text("6 rows")
    partial = _local_copy(app.page)
    assert partial["cursor"] and len(partial["products"]) + len(partial["stock"]) == 6

    device.kill()
    with container.db.transaction() as session:  # the server moves on meanwhile
        ledger.record_movement(session, sku="TEA-12", warehouse="BER", delta=5, reason="receipt")
        catalog.create(
            session,
            data={"sku": "TEA-13", "name": "Tea TEA-13", "price_cents": 990, "currency": "EUR"},
        )

    app = device.launch()
    resumed: list[str] = []
    app.page.on("request", lambda r: resumed.append(r.url) if PULL in r.url else None)
    _reopened(app)  # the scope was chosen: the app goes on pulling from its stored cursor
    expect(app.page.locator("#banner")).not_to_contain_text("last synced never")
    expect(app.page.locator("#banner")).not_to_contain_text(re.compile("Syncing|Sync failed"))
    local = _local_copy(app.page)
    server = _servers_copy(app.server, clerk)
    assert {p["sku"]: p for p in local["products"]} == server["product"]
    assert {s["sku"]: s for s in local["stock"]} == server["stock"]
    assert len(server["product"]) == 13
    assert "since=" in resumed[0]  # resumed where it was, not started over
    for sku, row in server["stock"].items():
        assert row["on_hand"] == on_hand(container, sku) == ledger_sum(container, sku)
    app.find("TEA-12")
    expect(app.page.locator("#chosen-stock")).to_contain_text("On hand 17 · available 17")


def test_a_browser_killed_before_a_push_answer_pushes_again_and_gets_a_duplicate(
    device: Device, actors: Actors, container: Container
) -> None:
    tea_shop(container, {"TEA-1": 10}, hamburg=1)
    clerk = actors.make(Role.CLERK, warehouses=["BER"])
    app = device.launch()
    _signed_in_at_ber(app, clerk)

    applied: list[int] = []

    def answer_lost(route: Route) -> None:
        applied.append(route.fetch().status)  # the server applies the push...
        # ...and the answer is never handed to the page: the browser dies first.

    app.page.route(f"**{PUSH}", answer_lost)
    app.find("TEA-1")
    app.move("Sell", 2)  # online: the sync starts at once
    _until(app.page, lambda: bool(applied))
    assert applied == [200]
    assert on_hand(container, "TEA-1") == 8
    assert device.wire == []
    device.kill()

    app = device.launch(offline=True)  # opened offline first, to see the queue before a sync
    _reopened(app)
    expect(app.page.locator("#pending li")).to_have_count(1)
    expect(app.page.locator("#pending")).to_contain_text("Sell 2 of TEA-1")
    expect(app.page.locator("#verdicts")).to_have_text("Nothing synced yet.")

    app.offline(False)  # the online event syncs: the server knows this mutation already
    expect(app.page.locator("#verdicts .status-applied")).to_contain_text(
        "applied (duplicate): Sell 2 of TEA-1"
    )
    expect(app.page.locator("#pending")).to_have_text("Nothing waiting.")
    assert [status for _, status in device.wire] == ["duplicate"]
    assert on_hand(container, "TEA-1") == 8
    assert ledger_sum(container, "TEA-1") == 8
    assert _movements(container, "TEA-1") == 2  # the first receipt and exactly one sale
