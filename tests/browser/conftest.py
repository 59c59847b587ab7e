"""A real headless Chromium (Debian's ``chromium``) driven by Playwright against a real server.

Each test gets its own server process on its own database (``live_server``) and its own browser
context (cookies, storage); the browser process is shared per xdist worker. Screenshots land in
``STOREKEEPER_SCREENSHOTS`` (default ``tests/artifacts/screenshots``), desktop and a 390-px phone.

A missing Chromium is a failure in CI (``scripts/ensure-services.sh`` installs it) and a skip
elsewhere, with the command that installs it.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Response,
    sync_playwright,
)

from tests.conftest import Actor, LiveServer

CHROMIUM = os.environ.get("STOREKEEPER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(
    os.environ.get(
        "STOREKEEPER_SCREENSHOTS", Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
    )
)
AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """Browser tests run on SQLite; the main flow also on PostgreSQL (it parametrizes itself)."""
    return str(request.param)


@pytest.fixture
def browser() -> Iterator[Browser]:
    """A headless Chromium for this test.

    Per test, not per session: Playwright's sync API keeps an asyncio loop running in this
    thread while it is started, and every later test of the worker that runs a loop of its own
    (anyio, asyncio.run) would fail with "Cannot run the event loop while another loop is
    running". A launch costs well under a second.
    """
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"no Chromium at {CHROMIUM}: scripts/ensure-services.sh installs it")
        pytest.skip("no Chromium: apt-get install chromium chromium-driver")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        yield launched
        launched.close()


@dataclass
class Console:
    """One browser tab on the console of a live server, with the problems it logged."""

    page: Page
    server: LiveServer
    problems: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        """The absolute address of a console path."""
        return self.server.url + path

    def goto(self, path: str) -> None:
        """Open a console path and wait for it to settle."""
        self.page.goto(self.url(path))
        self.page.wait_for_load_state("networkidle")

    def sign_in(self, actor: Actor, *, otp: str | None = None) -> None:
        """Fill the sign-in form as ``actor`` (and the one-time code step when given); a page
        that is on the sign-in form already (sent there from a page) keeps its ``next``."""
        if "/login" not in self.page.url:
            self.page.goto(self.url("/login"))
        self.page.get_by_label("E-mail").fill(actor.email)
        self.page.get_by_label("Password").fill(actor.password)
        self.page.get_by_role("button", name="Sign in").click()
        if otp is not None:
            self.page.get_by_label("One-time code").fill(otp)
            self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_load_state("networkidle")
        assert not self.page.url.endswith("/login"), self.page.content()

    def shoot(self, name: str) -> None:
        """Screenshots of the current page at desktop and phone width."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}-desktop.png"), full_page=True)
        self.page.set_viewport_size(PHONE)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}-phone.png"), full_page=True)
        self.page.set_viewport_size(DESKTOP)
        # Playwright's screenshot leaves style="" on inputs (caret hiding); an htmx swap or a
        # history restore would copy it into the page, which the strict CSP then reports.
        self.page.evaluate(
            """document.querySelectorAll('[style=""]').forEach(e => e.removeAttribute('style'))"""
        )


def _note(problems: list[str], message: ConsoleMessage) -> None:
    # A CSP violation or a script error is a bug of the page, whatever the test checks. A form
    # answered 4xx (a refused sign-in, an invalid field) is logged by Chromium too: not a bug;
    # responses are checked by _note_response.
    ignored = r"net::ERR_ABORTED|Failed to load resource: the server responded with a status of 4"
    if message.type == "error" and not re.search(ignored, message.text):
        problems.append(message.text)


def _note_response(problems: list[str], response: Response) -> None:
    # Never a 500; and a page's own files (scripts, styles, images) always load.
    kind = response.request.resource_type
    if response.status >= 500 or (
        response.status >= 400 and kind in ("script", "stylesheet", "image", "font")
    ):
        problems.append(f"{response.status} for {kind} {response.url}")


@pytest.fixture
def console(browser: Browser, live_server: LiveServer) -> Iterator[Console]:
    """A fresh browser context on a live server; fails the test if a page logged an error."""
    context: BrowserContext = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(15_000)
    page = context.new_page()
    tab = Console(page=page, server=live_server)
    page.on("console", lambda message: _note(tab.problems, message))
    page.on("response", lambda response: _note_response(tab.problems, response))
    page.on("pageerror", lambda error: tab.problems.append(f"page error: {error}"))
    yield tab
    context.close()
    assert not tab.problems, tab.problems


def axe_violations(page: Page, *, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """axe-core's violations of the given impacts on the current page, as readable lines.

    axe is injected through Playwright's isolated world-free evaluate, not a <script> tag, so the
    page's CSP needs no exception for it.
    """
    page.evaluate(AXE.read_text())
    results = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results["violations"]
        if v.get("impact") in impacts
    ]
