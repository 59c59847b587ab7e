"""Accessibility of every console page in a real browser, and the console by keyboard alone.

Pages come from the app (tests/console_support.py): every GET route without path parameters is
opened as a manager (the ``/admin`` ones as an admin) and as a clerk, over a small shop so that
tables have rows. Each must pass axe-core (no serious or critical violation: every form control
labelled, contrast, names, ...), and have exactly one ``<h1>`` and one ``<main>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from storekeeper.accounts.domain import Role
from storekeeper.api.app import create_app
from storekeeper.bootstrap import Container
from tests.browser.conftest import Console, axe_violations
from tests.conftest import Actor, Actors
from tests.console_support import build_shop, console_routes, url_for


@pytest.fixture
def page_paths(container: Container, staff: dict[str, Actor]) -> list[str]:
    """Every console GET route without path parameters (the app is built, not served), with
    its required query parameters if any."""
    routes = console_routes(create_app(container=container))
    pages = [r for r in routes if r.method == "GET" and not r.path_params]
    return [url_for(r, {"warehouse": "BER", "sku": "SKU-1"}) for r in pages]


@pytest.fixture
def staff(console: Console, actors: Actors) -> Iterator[dict[str, Actor]]:
    """An admin, a manager and a clerk of BER, in a shop with something on every page."""
    made = {
        "admin": actors.make(Role.ADMIN),
        "manager": actors.make(Role.MANAGER),
        "clerk": actors.make(Role.CLERK, warehouses=["BER"]),
    }
    customer = actors.make(Role.CUSTOMER)
    with httpx.Client(base_url=console.server.url, timeout=30) as http:
        build_shop(
            http,
            admin=made["admin"].headers,
            customer=customer.headers,
            clerk=made["clerk"].headers,
            clerk_id=made["clerk"].id,
        )
    yield made


def _open(console: Console, path: str) -> bool:
    """Open ``path`` and let htmx settle; False for what is no page: a download (a CSV
    export), or a fragment that htmx puts into a page (no ``<html>`` of its own)."""
    answer = console.page.request.get(console.url(path))
    kind = answer.headers.get("content-type", "")
    if not kind.startswith("text/html") or "<html" not in answer.text()[:2000].lower():
        return False
    # Not "networkidle": a page with a live stream (SSE) never gets there. htmx marks the
    # elements whose requests are in flight (content loaded on "load", say): wait for none.
    console.page.goto(console.url(path))
    console.page.wait_for_function("document.querySelectorAll('.htmx-request').length === 0")
    return True


def _problems(page: Page, path: str) -> list[str]:
    found = [f"{path}: {violation}" for violation in axe_violations(page)]
    headings, mains = page.locator("h1").count(), page.locator("main").count()
    if headings != 1:
        found.append(f"{path}: {headings} <h1> elements, expected exactly one")
    if mains != 1:
        found.append(f"{path}: {mains} <main> elements, expected exactly one")
    return found


def _visit_all(console: Console, actor: Actor, paths: list[str]) -> list[str]:
    console.page.context.clear_cookies()
    console.sign_in(actor)
    problems: list[str] = []
    for path in paths:
        if _open(console, path):
            problems += _problems(console.page, path)
    return problems


def test_every_page_passes_axe_with_one_h1_and_a_main_for_managers_admins_and_clerks(
    console: Console, staff: dict[str, Actor], page_paths: list[str]
) -> None:
    ordinary = [p for p in page_paths if not p.startswith("/admin")]
    admin_pages = [p for p in page_paths if p.startswith("/admin")]
    assert "/" in ordinary and "/products" in ordinary
    problems = _visit_all(console, staff["manager"], ordinary)
    problems += _visit_all(console, staff["admin"], admin_pages)
    # A clerk's /admin pages are the "Not allowed" page, which must be as accessible.
    problems += [f"as a clerk: {p}" for p in _visit_all(console, staff["clerk"], page_paths)]
    assert not problems, "\n".join(problems)


# --- keyboard only --------------------------------------------------------------------------


def _focused(page: Page) -> dict[str, str]:
    return page.evaluate(
        """() => {
            const el = document.activeElement;
            return {
                tag: el ? el.tagName.toLowerCase() : "",
                id: (el && el.id) || "",
                text: el ? (el.innerText || el.value || "").trim() : "",
                inMain: String(Boolean(el && el.closest("main"))),
                inNav: String(Boolean(el && el.closest("nav"))),
            };
        }"""
    )


def _tab_to(page: Page, wanted: dict[str, str], *, backwards: bool = False, most: int = 40) -> None:
    """Press Tab (or Shift+Tab) until the focused element has every property of ``wanted``."""
    for _ in range(most):
        focused = _focused(page)
        if all(focused.get(key) == value for key, value in wanted.items()):
            return
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
    raise AssertionError(f"{wanted} not reached by keyboard; focus is on {_focused(page)}")


def test_signing_in_and_reaching_the_products_page_by_keyboard_alone(
    console: Console, actors: Actors
) -> None:
    manager = actors.make(Role.MANAGER)
    page, keyboard = console.page, console.page.keyboard
    console.goto("/login")

    _tab_to(page, {"id": "email"})
    keyboard.type(manager.email)
    keyboard.press("Tab")
    assert _focused(page)["id"] == "password"
    keyboard.type(manager.password)
    keyboard.press("Enter")
    expect(page).to_have_url(console.url("/"))
    page.wait_for_load_state("load")

    # The first Tab reaches the skip link, Enter puts the focus in the page's content.
    keyboard.press("Tab")
    assert _focused(page)["text"] == "Skip to content", _focused(page)
    expect(page.get_by_role("link", name="Skip to content")).to_be_visible()
    keyboard.press("Enter")
    assert _focused(page)["inMain"] == "true", _focused(page)

    # Back up from the content into the menu, and open Products from it.
    _tab_to(page, {"inNav": "true", "text": "Products"}, backwards=True)
    keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/products$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Products")
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Products")
    ).to_have_attribute("aria-current", "page")
