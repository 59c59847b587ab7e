"""Every console route against every kind of visitor: the console's half of the policy table.

Routes come from the app (tests/console_support.py), so a page merged later is checked without
editing this file: anonymous visitors are sent to sign in, customers get the "Not allowed" page,
managers and admins open every page, clerks never reach ``/admin``, and no POST is carried out
without the session's CSRF token. A refused request must leave the database as it was.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import Container
from storekeeper.db import Database
from storekeeper.web.session import CSRF_FIELD, CSRF_HEADER
from tests.conftest import Actors
from tests.console_support import (
    ConsoleRoute,
    Shop,
    browser_for,
    build_shop,
    changed_tables,
    console_routes,
    find_route,
    fingerprint,
    page_csrf,
    sign_in,
    url_for,
)

PLAUSIBLE_FORM = {
    "sku": "SKU-1",
    "qty": "1",
    "quantity": "1",
    "delta": "1",
    "counted": "1",
    "reason": "receipt",
    "note": "checked",
    "name": "Renamed",
    "price_cents": "100",
    "warehouse": "BER",
    "from": "HAM",
    "to": "BER",
    "to_warehouse": "BER",
    "role": "manager",
    "email": "someone@example.com",
    "password": "a-long-passphrase-1",
    "label": "till",
    "scope": "warehouse:BER",
    "status": "resolved",
}
"""A form that would do something on most console POSTs: refused requests get it, so that
"nothing changed" means the refusal stopped them, not an empty form."""


@dataclass
class World:
    """The app, its database, its console routes, a shop, and a signed-in browser per role."""

    app: FastAPI
    db: Database
    routes: list[ConsoleRoute]
    shop: Shop
    browsers: dict[str, TestClient]
    csrf: dict[str, str]

    def browser(self, role: str) -> TestClient:
        """The cookie jar of ``role``'s console session (``anonymous``: none)."""
        return self.browsers[role]

    def url(self, route: ConsoleRoute) -> str:
        """``route`` with its path parameters naming objects in BER."""
        return url_for(route, self.shop.objects)


@pytest.fixture
def world(client: TestClient, container: Container, actors: Actors) -> Iterator[World]:
    made = {
        "admin": actors.make(Role.ADMIN),
        "manager": actors.make(Role.MANAGER),
        "clerk": actors.make(Role.CLERK, warehouses=["BER"]),
        "customer": actors.make(Role.CUSTOMER),
    }
    shop = build_shop(
        client,
        admin=made["admin"].headers,
        customer=made["customer"].headers,
        clerk=made["clerk"].headers,
        clerk_id=made["clerk"].id,
    )
    browsers = {role: sign_in(client.app, actor) for role, actor in made.items()}
    browsers["anonymous"] = browser_for(client.app)
    csrf = {role: page_csrf(browsers[role]) for role in ("admin", "manager", "clerk")}
    yield World(client.app, container.db, console_routes(client.app), shop, browsers, csrf)
    for browser in browsers.values():
        browser.close()


def _send(
    browser: TestClient, route: ConsoleRoute, url: str, **kwargs: object
) -> tuple[int, str, str]:
    if route.method == "GET":
        kwargs.pop("data", None)  # a GET carries no form
    answer = browser.request(route.method, url, **kwargs)  # type: ignore[arg-type]
    return answer.status_code, answer.headers.get("location", ""), answer.text


def _private(world: World) -> list[ConsoleRoute]:
    return [route for route in world.routes if not route.is_public]


def test_anonymous_visitors_are_sent_to_sign_in_from_every_page_and_change_nothing(
    world: World,
) -> None:
    before = fingerprint(world.db)
    anonymous = world.browser("anonymous")
    wrong = []
    for route in _private(world):
        url = world.url(route)
        status, location, _ = _send(anonymous, route, url, data=PLAUSIBLE_FORM)
        want = f"/login?next={quote(url, safe='/')}"
        if (status, location) != (303, want):
            wrong.append(f"{route}: {status} to {location!r}, expected 303 to {want!r}")
        if route.method == "GET":
            htmx = anonymous.get(url, headers={"HX-Request": "true"})
            if (htmx.status_code, htmx.headers.get("HX-Redirect")) != (204, want):
                wrong.append(f"{route} (htmx): {htmx.status_code}, expected 204 + HX-Redirect")
    wrong += [f"table {name} changed" for name in changed_tables(before, fingerprint(world.db))]
    assert not wrong, "\n".join(wrong)


def test_the_sign_in_form_is_the_only_public_page(client: TestClient) -> None:
    routes = console_routes(client.app)
    names = {str(route) for route in routes}
    assert {"GET /", "GET /products", "GET /login", "POST /logout", "GET /account"} <= names
    assert not any(route.path.startswith(("/api/", "/static", "/live/")) for route in routes)
    assert {str(route) for route in routes if route.is_public} == {"GET /login", "POST /login"}
    anonymous = browser_for(client.app)
    assert anonymous.get("/login").status_code == 200
    # Without its double-submit token the sign-in form is refused and sets no session.
    refused = anonymous.post("/login", data={"email": "x@example.com", "password": "x" * 12})
    anonymous.close()
    assert refused.status_code == 400
    assert "sk_console" not in refused.cookies


def test_customers_get_the_not_allowed_page_on_every_route(world: World) -> None:
    before = fingerprint(world.db)
    customer = world.browser("customer")
    wrong = []
    for route in _private(world):
        status, _, text = _send(customer, route, world.url(route), data=PLAUSIBLE_FORM)
        if status != 403 or "Not allowed" not in text:
            wrong.append(f"{route}: {status}")
    wrong += [f"table {name} changed" for name in changed_tables(before, fingerprint(world.db))]
    assert not wrong, "\n".join(wrong)


def test_managers_and_admins_open_every_page_and_reading_changes_nothing(world: World) -> None:
    before = fingerprint(world.db)
    wrong = []
    for role in ("manager", "admin"):
        browser = world.browser(role)
        for route in world.routes:
            if route.method != "GET" or route.is_public:
                continue
            status, location, text = _send(browser, route, world.url(route))
            if role == "manager" and route.is_admin and status == 403:
                continue  # as the API: users, devices and the audit log are for admins
            # Never 401/403/5xx; and 404/422 would mean the page was not really exercised
            # (its path parameter names nothing: see PARAM_NAMES in tests/console_support.py).
            if status >= 400 or location.startswith("/login") or "Traceback" in text:
                wrong.append(f"{role} {route} ({world.url(route)}): {status} {location}")
    wrong += [f"a GET wrote to {name}" for name in changed_tables(before, fingerprint(world.db))]
    assert not wrong, "\n".join(wrong)


def test_clerks_are_refused_every_admin_route(world: World) -> None:
    before = fingerprint(world.db)
    clerk = world.browser("clerk")
    admin_routes = [route for route in world.routes if route.is_admin]
    assert admin_routes, "the console has admin pages"
    wrong = []
    for route in admin_routes:
        # With the clerk's own CSRF token: the role, not a missing token, must refuse it.
        status, _, _ = _send(
            clerk,
            route,
            world.url(route),
            data={**PLAUSIBLE_FORM, CSRF_FIELD: world.csrf["clerk"]},
            headers={CSRF_HEADER: world.csrf["clerk"]},
        )
        if status != 403:
            wrong.append(f"{route}: {status}")
    wrong += [f"table {name} changed" for name in changed_tables(before, fingerprint(world.db))]
    assert not wrong, "\n".join(wrong)


def test_every_post_without_the_sessions_csrf_token_is_refused_and_changes_nothing(
    world: World,
) -> None:
    posts = [route for route in _private(world) if route.method == "POST"]
    assert any(route.path == "/logout" for route in posts)
    admin = world.browser("admin")
    attempts = {
        "no token": {"data": PLAUSIBLE_FORM},
        "a forged form token": {"data": {**PLAUSIBLE_FORM, CSRF_FIELD: "0" * 64}},
        "a forged header": {"data": PLAUSIBLE_FORM, "headers": {CSRF_HEADER: "0" * 64}},
        "another session's token": {
            "data": {**PLAUSIBLE_FORM, CSRF_FIELD: world.csrf["manager"]},
            "headers": {CSRF_HEADER: world.csrf["manager"]},
        },
    }
    before = fingerprint(world.db)
    wrong = []
    for route in posts:
        for attempt, kwargs in attempts.items():
            status, _, _ = _send(admin, route, world.url(route), **kwargs)
            if status != 403:
                wrong.append(f"{route} with {attempt}: {status}")
    wrong += [f"table {name} changed" for name in changed_tables(before, fingerprint(world.db))]
    assert not wrong, "\n".join(wrong)
    # The refused sign-out did not end the session either.
    assert admin.get("/account").status_code == 200


# --- clerks and their warehouses ------------------------------------------------------------

CLERK_SCOPE = [
    ("GET", "/stock/{code}"),
    ("POST", "/stock/{code}/receive"),
    ("GET", "/stock/{code}/count"),
    ("POST", "/stock/{code}/transfer"),
    ("GET", "/sync-exceptions?warehouse={code}"),
    ("GET", "/cold-chain?warehouse={code}"),
]
"""Warehouse-scoped pages being built (issue 14): a clerk of BER asks for HAM's. An entry whose
route is not in the app yet is skipped, and turns on by itself once the page is merged."""


def _built(routes: list[ConsoleRoute], method: str, template: str) -> ConsoleRoute:
    path, _, query = template.partition("?")
    route = find_route(routes, method, path)
    if route is None:
        pytest.skip(f"route not built: {method} {path}")
    for key in re.findall(r"([^&=]+)=", query):
        if key not in route.query_params:
            pytest.skip(f"route not built: {method} {path} takes no ?{key}=")
    return route


@pytest.mark.parametrize(
    ("method", "template"), CLERK_SCOPE, ids=[" ".join(e) for e in CLERK_SCOPE]
)
def test_a_clerk_of_one_warehouse_is_refused_another_warehouses_pages(
    request: pytest.FixtureRequest, client: TestClient, method: str, template: str
) -> None:
    route = _built(console_routes(client.app), method, template)
    world: World = request.getfixturevalue("world")
    clerk, token = world.browser("clerk"), world.csrf["clerk"]
    ham = template.replace("{code}", "HAM")
    before = fingerprint(world.db)
    status, _, _ = _send(
        clerk,
        route,
        ham,
        data={**PLAUSIBLE_FORM, "warehouse": "HAM", "from": "HAM", "to": "BER", CSRF_FIELD: token},
        headers={CSRF_HEADER: token},
    )
    assert status == 403, f"{method} {ham} as a clerk of BER: {status}"
    assert changed_tables(before, fingerprint(world.db)) == []
    if method == "GET":  # and the clerk's own warehouse is open, so the 403 is about HAM
        ber = ham.replace("HAM", "BER")
        answer = clerk.get(ber)
        assert answer.status_code < 400, f"GET {ber} as a clerk of BER: {answer.status_code}"
        assert urlsplit(answer.headers.get("location", "")).path != "/login"
