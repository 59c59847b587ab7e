"""The console's admin pages in a real browser: users, device tokens, the audit log."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from httpx import Response
from playwright.sync_api import expect

from storekeeper.accounts import devices as accounts_devices
from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import Container
from storekeeper.inventory import warehouses as inventory_warehouses
from storekeeper.web import admin as admin_pages
from tests.browser.conftest import Console, axe_violations
from tests.conftest import Actor, Actors
from tests.e2e.test_console_http import _signed_in


def _warehouses(container: Container, *codes: str) -> None:
    with container.db.transaction() as session:
        for code in codes:
            inventory_warehouses.create_warehouse(
                session, code=code, name=f"{code} depot", lat=52.5, lon=13.4
            )


def test_an_admin_creates_a_clerk_for_one_warehouse_who_can_then_sign_in(
    console: Console, actors: Actors, container: Container
) -> None:
    _warehouses(container, "BER", "HAM")
    console.sign_in(actors.make(Role.ADMIN))
    console.goto("/admin/users")
    console.page.get_by_role("link", name="New user").click()
    page = console.page
    page.get_by_label("E-mail").fill("new.clerk@example.com")
    page.get_by_label("Password").fill("password123")
    page.get_by_label("Role").select_option("clerk")
    page.get_by_label("BER").check()
    page.get_by_role("button", name="Create user").click()
    expect(page.locator("#password-error")).to_contain_text("most common")
    expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("E-mail")).to_have_value("new.clerk@example.com")
    expect(page.get_by_label("BER")).to_be_checked()

    page.get_by_label("Password").fill("grey-heron-lantern")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("status")).to_contain_text("Account created")
    expect(page.locator(".facts")).to_contain_text("BER")
    assert "HAM" not in page.locator(".facts").inner_text()

    console.goto("/admin/users?role=clerk&active=yes")
    row = page.get_by_role("row", name=re.compile("new.clerk@example.com"))
    expect(row).to_contain_text("BER")
    expect(row).to_contain_text("active")
    console.goto("/admin/users?role=manager")
    expect(page.get_by_text("new.clerk@example.com")).to_have_count(0)
    console.goto("/admin/users")
    console.shoot("admin-users")
    assert axe_violations(page) == []

    assert console.page.context.browser is not None
    other = console.page.context.browser.new_context()
    try:
        clerk_page = other.new_page()
        clerk_page.goto(console.url("/login"))
        clerk_page.get_by_label("E-mail").fill("new.clerk@example.com")
        clerk_page.get_by_label("Password").fill("grey-heron-lantern")
        clerk_page.get_by_role("button", name="Sign in").click()
        expect(clerk_page.locator(".signout .who")).to_have_text("clerk · BER")
        clerk_page.goto(console.url("/admin/users"))
        expect(clerk_page.get_by_role("heading", name="Not allowed")).to_be_visible()
    finally:
        other.close()


def test_a_device_token_is_shown_once_with_a_qr_code_and_refused_once_revoked(
    console: Console, actors: Actors, container: Container
) -> None:
    _warehouses(container, "BER")
    console.sign_in(actors.make(Role.ADMIN))
    console.goto("/admin/devices")
    page = console.page
    page.get_by_label("Label").fill("Till 1 Berlin")
    page.get_by_label("Warehouse").select_option("BER")
    page.get_by_label("Till or handheld").check()
    page.get_by_role("button", name="Issue token").click()
    expect(page.get_by_role("heading", name="Device token issued")).to_be_visible()
    expect(page.get_by_label("QR code of the device token")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("never again")
    token = page.get_by_label("Device token", exact=True).input_value()
    assert token.count(".") == 2  # a signed token
    console.shoot("admin-device-issued")
    assert axe_violations(page) == []

    pull = console.url("/api/v1/sync/pull?scope=warehouse:BER")
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(pull, headers=bearer).status_code == 200

    console.goto("/admin/devices")
    row = page.get_by_role("row", name=re.compile("Till 1 Berlin"))
    expect(row).to_contain_text("warehouse:BER")
    expect(row).to_contain_text("active")
    assert token not in page.content()
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke the token of Till 1 Berlin").click()
    expect(page.get_by_role("status")).to_contain_text("Token revoked")
    expect(page.get_by_role("row", name=re.compile("Till 1 Berlin"))).to_contain_text("revoked")
    assert httpx.get(pull, headers=bearer).status_code == 401


def test_the_audit_log_shows_device_issue_and_revocation_and_filters_by_kind(
    console: Console, actors: Actors, container: Container
) -> None:
    admin = actors.make(Role.ADMIN, email="boss@example.com")
    with container.db.transaction() as session:
        made = accounts_devices.create_device(
            session,
            container.settings,
            key=container.signing_key,
            label="Chiller probe",
            scope="warehouse:BER",
            actor_id=admin.id,
            purpose="sensor",
        )
    with container.db.transaction() as session:
        accounts_devices.revoke_device(session, device_id=made.device.id, actor_id=admin.id)
    console.sign_in(admin)
    console.goto("/admin/audit")
    page = console.page
    issued = page.get_by_role("row", name=re.compile("device_created"))
    expect(issued).to_contain_text("Chiller probe")
    expect(issued).to_contain_text("boss@example.com")
    expect(page.get_by_role("row", name=re.compile("device_revoked"))).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("login_succeeded"))).to_be_visible()
    console.shoot("admin-audit")
    assert axe_violations(page) == []
    # A screenshot leaves style="" on the inputs (caret hiding), which htmx would copy on swap.
    console.goto("/admin/audit")
    page.get_by_label("Kind").select_option("device_revoked")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"kind=device_revoked"))
    expect(page.get_by_role("row", name=re.compile("device_created"))).to_have_count(0)
    expect(page.get_by_role("row", name=re.compile("device_revoked"))).to_have_count(1)
    csv = page.get_by_role("link", name="Download CSV").get_attribute("href")
    assert csv is not None and "kind=device_revoked" in csv and "format=csv" in csv

    page.get_by_label("User (e-mail)").fill("nobody@example.com")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#user-error")).to_have_text("no account has this e-mail")


def test_a_manager_opening_the_admin_pages_gets_not_allowed(
    console: Console, actors: Actors
) -> None:
    console.sign_in(actors.make(Role.MANAGER))
    console.goto("/admin/users")
    expect(console.page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(console.page.get_by_text("a manager may not do this")).to_be_visible()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_admin_urls_refuse_non_admins_and_export_csv(
    client: TestClient, actors: Actors, container: Container
) -> None:
    admin, manager = actors.make(Role.ADMIN), actors.make(Role.MANAGER)
    some = uuid.uuid4()
    gets = ["/admin/users", "/admin/users/new", f"/admin/users/{some}", "/admin/devices"]
    gets += ["/admin/audit", "/admin/users?format=csv", "/admin/audit?format=csv"]
    posts = ["/admin/users/new", f"/admin/users/{some}", f"/admin/users/{some}/active"]
    posts += [f"/admin/users/{some}/password", "/admin/devices", f"/admin/devices/{some}/revoke"]
    csrf = _signed_in(client, manager)
    for path in gets:
        assert client.get(path).status_code == 403, path
    for path in posts:
        assert client.post(path, data={"csrf_token": csrf}).status_code == 403, path

    _signed_in(client, admin)
    users_csv = client.get("/admin/users?role=manager&format=csv")
    assert users_csv.headers["content-type"].startswith("text/csv")
    lines = users_csv.text.splitlines()
    assert lines[0].startswith("email,role,warehouses,active")
    assert [line.split(",")[0] for line in lines[1:]] == [manager.email]
    audit_csv = client.get("/admin/audit?kind=login_succeeded&format=csv").text.splitlines()
    assert len(audit_csv) == 3  # header, the manager's and the admin's sign-in
    for bad in ("/admin/audit?from=yesterday", "/admin/users?role=device", "/admin/audit?before=0"):
        assert client.get(bad).status_code == 422, bad
    blank = "/admin/audit?kind=&user=&from=&to=9999-12-31&before=&format="
    assert client.get(blank).status_code == 200


def test_user_forms_say_what_is_wrong_next_to_the_field_and_apply_changes(
    client: TestClient, actors: Actors, container: Container
) -> None:
    _warehouses(container, "BER", "HAM")
    admin, manager = actors.make(Role.ADMIN), actors.make(Role.MANAGER)
    csrf = _signed_in(client, admin)
    assert client.post("/admin/devices", data={"label": "x"}).status_code == 403  # no CSRF token

    def post(path: str, **fields: object) -> Response:
        return client.post(path, data={"csrf_token": csrf, **fields}, follow_redirects=False)

    new = {"password": "grey-heron-lantern", "role": "clerk"}
    taken = post("/admin/users/new", email=manager.email.upper(), **new)
    assert taken.status_code == 409
    assert re.search(r'id="email-error">an account with e-mail .* exists already', taken.text)
    unknown = post("/admin/users/new", email="x@example.com", warehouses=["ZZZ"], **new)
    assert unknown.status_code == 422
    assert 'id="warehouses-error">no warehouse with code ZZZ' in unknown.text
    short = post("/admin/users/new", email="y@example.com", password="short", role="clerk")
    assert 'id="password-error">should have at least 10 characters' in short.text

    page = f"/admin/users/{manager.id}"
    saved = post(page, role="clerk", warehouses=["HAM", "BER"])
    assert saved.headers["location"] == f"{page}?done=saved"
    assert "BER, HAM" in client.get(page).text
    assert post(f"{page}/password", new_password="123").status_code == 422
    assert post(f"{page}/password", new_password="kestrel-meadow-42").status_code == 303
    assert post(f"{page}/active", is_active="false").headers["location"].endswith("=disabled")
    assert "disabled" in client.get("/admin/users?active=no").text
    last = post(f"/admin/users/{admin.id}/active", is_active="false")
    assert last.status_code == 409
    assert 'id="is_active-error">this is the last active admin' in last.text


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_users_devices_and_audit_events_are_paged_by_keyset(
    client: TestClient, actors: Actors, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = actors.make(Role.ADMIN)
    clerks: list[Actor] = [actors.make(Role.CLERK) for _ in range(3)]
    labels = [actors.make(Role.DEVICE).email for _ in range(3)]  # a device's label is its e-mail
    _signed_in(client, admin)
    monkeypatch.setattr(admin_pages, "PAGE", 2)
    for path, names, more in (
        ("/admin/users?role=clerk", [a.email for a in clerks], "Next page"),
        ("/admin/devices", labels, "Older tokens"),
    ):
        first = client.get(path).text
        following = re.search(rf'href="(/admin/[^"]+)">{more}', first)
        assert following, first
        second = client.get(following[1].replace("&amp;", "&")).text
        assert more not in second
        on_first = [n for n in names if n in first]
        on_second = [n for n in names if n in second]
        assert len(on_first) == 2 and len(on_second) == 1, (on_first, on_second)
        assert sorted(on_first + on_second) == sorted(names)
    today = datetime.now(UTC).date()
    window = f"kind=login_succeeded&from={today - timedelta(days=1)}&to={today}"
    assert admin.email in client.get(f"/admin/audit?{window}").text
    assert (
        admin.email
        not in client.get(f"/admin/audit?kind=login_succeeded&to={today - timedelta(days=1)}").text
    )
