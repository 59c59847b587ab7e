"""Sessions behind tokens: rotation and reuse, logout, revocation, two-factor, devices, audit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient

from storekeeper.accounts.domain import Role
from storekeeper.api.app import create_app
from storekeeper.bootstrap import bootstrap
from storekeeper.config import Settings
from tests.conftest import Actor, Actors
from tests.e2e.api_support import API, assert_error, product

PASSWORD = "correct-horse-battery"


def _login(client: TestClient, email: str, otp: str | None = None) -> Any:
    data = {"username": email, "password": PASSWORD}
    if otp is not None:
        data["otp"] = otp
    return client.post(f"{API}/auth/token", data=data)


def _pair(client: TestClient, email: str, otp: str | None = None) -> dict[str, Any]:
    r = _login(client, email, otp)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _refresh(client: TestClient, refresh_token: str) -> Any:
    return client.post(f"{API}/auth/refresh", json={"refresh_token": refresh_token})


def _audit_kinds(client: TestClient, admin: Actor, **params: str) -> list[str]:
    r = client.get(f"{API}/audit", headers=admin.headers, params=params)
    assert r.status_code == 200, r.text
    return [event["kind"] for event in r.json()["items"]]


# --- refresh rotation -------------------------------------------------------------------------


def test_each_refresh_token_works_once_and_a_replay_revokes_the_whole_session(
    client: TestClient, actors: Actors, customer: Actor
) -> None:
    admin = actors.make(Role.ADMIN)
    first = _pair(client, customer.email)
    second = _refresh(client, first["refresh_token"]).json()
    third = _refresh(client, second["refresh_token"]).json()
    assert client.get(f"{API}/me", headers=_bearer(third["access_token"])).status_code == 200

    # An attacker replays a stolen, already used refresh token:
    assert_error(_refresh(client, first["refresh_token"]), 401, "refresh_token_reused")
    # ...and the whole family is gone, the legitimate holder's latest tokens included.
    assert_error(_refresh(client, third["refresh_token"]), 401, "invalid_token")
    assert_error(client.get(f"{API}/me", headers=_bearer(third["access_token"])), 401)
    assert "refresh_token_reuse" in _audit_kinds(client, admin, user_id=str(customer.id))
    # Other sessions of the same user are untouched.
    assert client.get(f"{API}/me", headers=customer.headers).status_code == 200


def test_an_access_token_is_not_a_refresh_token_and_vice_versa(
    client: TestClient, customer: Actor
) -> None:
    pair = _pair(client, customer.email)
    assert_error(_refresh(client, pair["access_token"]), 401, "invalid_token")
    assert_error(client.get(f"{API}/me", headers=_bearer(pair["refresh_token"])), 401)


# --- logout and revocation --------------------------------------------------------------------


def test_logout_ends_the_session_at_once(client: TestClient, customer: Actor) -> None:
    pair = _pair(client, customer.email)
    r = client.post(f"{API}/auth/logout", headers=_bearer(pair["access_token"]))
    assert r.status_code == 204
    assert_error(client.get(f"{API}/me", headers=_bearer(pair["access_token"])), 401)
    assert_error(_refresh(client, pair["refresh_token"]), 401, "invalid_token")


def test_disabling_a_user_revokes_every_token_and_a_role_change_applies_at_once(
    client: TestClient, actors: Actors
) -> None:
    admin, manager = actors.make(Role.ADMIN), actors.make(Role.MANAGER)
    pair = _pair(client, manager.email)
    assert client.post(f"{API}/products", headers=manager.headers, json=product("A")).is_success

    r = client.patch(f"{API}/users/{manager.id}", headers=admin.headers, json={"role": "customer"})
    assert r.status_code == 200, r.text
    assert_error(client.post(f"{API}/products", headers=manager.headers, json=product("B")), 403)

    client.patch(f"{API}/users/{manager.id}", headers=admin.headers, json={"is_active": False})
    for token in (manager.headers, _bearer(pair["access_token"])):
        assert_error(client.get(f"{API}/me", headers=token), 401, "invalid_token")
    assert_error(_refresh(client, pair["refresh_token"]), 401, "invalid_token")
    kinds = _audit_kinds(client, admin, user_id=str(manager.id))
    assert {"role_changed", "user_disabled"} <= set(kinds)


# --- two-factor -------------------------------------------------------------------------------


def _enable_two_factor(client: TestClient, who: Actor) -> tuple[pyotp.TOTP, list[str]]:
    setup = client.post(f"{API}/auth/2fa/setup", headers=who.headers)
    assert setup.status_code == 200, setup.text
    body = setup.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/")
    assert body["secret"] in body["otpauth_uri"]
    totp = pyotp.TOTP(body["secret"])
    # A code of the previous step: allowed skew, and it leaves the current one unused.
    code = totp.at(time.time() - 30)
    r = client.post(f"{API}/auth/2fa/enable", headers=who.headers, json={"code": code})
    assert r.status_code == 200, r.text
    codes = r.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    return totp, codes


def test_two_factor_sign_in_needs_a_fresh_code_each_time(
    client: TestClient, customer: Actor
) -> None:
    totp, _ = _enable_two_factor(client, customer)
    assert client.get(f"{API}/me", headers=customer.headers).json()["two_factor_enabled"]

    assert_error(_login(client, customer.email), 401, "otp_required")
    assert_error(_login(client, customer.email, "000000"), 401, "invalid_otp")
    code = totp.now()
    assert _login(client, customer.email, code).status_code == 200
    assert_error(_login(client, customer.email, code), 401, "invalid_otp")  # replayed


def test_codes_beyond_one_step_of_clock_skew_are_refused(
    client: TestClient, actors: Actors
) -> None:
    user = actors.make(Role.CUSTOMER)
    totp, _ = _enable_two_factor(client, user)
    for offset in (-90, -60, 60, 90):
        assert_error(_login(client, user.email, totp.at(time.time() + offset)), 401, "invalid_otp")
    assert _login(client, user.email, totp.at(time.time() + 30)).status_code == 200


def test_recovery_codes_work_once_each(client: TestClient, customer: Actor) -> None:
    _, codes = _enable_two_factor(client, customer)
    assert _login(client, customer.email, codes[0]).status_code == 200
    assert_error(_login(client, customer.email, codes[0]), 401, "invalid_otp")
    assert _login(client, customer.email, codes[1].upper()).status_code == 200
    assert_error(_login(client, customer.email, "aaaa-bbbb-cccc"), 401, "invalid_otp")


def test_enabling_needs_a_valid_code_and_setup_first(client: TestClient, customer: Actor) -> None:
    r = client.post(f"{API}/auth/2fa/enable", headers=customer.headers, json={"code": "123456"})
    assert_error(r, 409, "two_factor_not_set_up")
    client.post(f"{API}/auth/2fa/setup", headers=customer.headers)
    r = client.post(f"{API}/auth/2fa/enable", headers=customer.headers, json={"code": "123456"})
    assert_error(r, 422, "invalid_otp")
    r = client.post(f"{API}/auth/2fa/enable", headers=customer.headers, json={"code": "12ab"})
    assert_error(r, 422, "validation_error")


@pytest.fixture
def strict_client(settings: Settings) -> Iterator[TestClient]:
    """The app with two-factor sign-in required for admins and managers."""
    container = bootstrap(settings.model_copy(update={"require_2fa_roles": ["admin", "manager"]}))
    with TestClient(create_app(container=container), raise_server_exceptions=False) as client:
        yield client


def test_a_role_that_must_use_two_factor_can_only_set_it_up_until_it_has(
    strict_client: TestClient, actors: Actors, customer: Actor
) -> None:
    client = strict_client
    admin = actors.make(Role.ADMIN)
    pair = _pair(client, admin.email)
    headers = _bearer(pair["access_token"])
    assert_error(client.get(f"{API}/users", headers=headers), 403, "two_factor_setup_required")
    assert client.get(f"{API}/me", headers=headers).status_code == 200
    assert client.get(f"{API}/me", headers=_bearer(_pair(client, customer.email)["access_token"]))

    signed_in = Actor(admin.id, admin.email, PASSWORD, Role.ADMIN, headers)
    _enable_two_factor(client, signed_in)
    assert client.get(f"{API}/users", headers=headers).status_code == 200


# --- passwords --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("ada@example.com", "password1234"),
        ("ada@example.com", "Password2024!"),
        ("ada@example.com", "qwertyuiop"),
        ("ada@example.com", "zzzzzzzzzzzz"),
        ("lovelace@example.com", "my-lovelace-pass"),
    ],
)
def test_common_or_personal_passwords_are_refused(
    client: TestClient, email: str, password: str
) -> None:
    r = client.post(f"{API}/auth/register", json={"email": email, "password": password})
    assert_error(r, 422, "weak_password")


def test_failed_sign_ins_look_alike_and_are_audited(
    client: TestClient, actors: Actors, customer: Actor
) -> None:
    admin = actors.make(Role.ADMIN)
    unknown = client.post(
        f"{API}/auth/token", data={"username": "nobody@example.com", "password": PASSWORD}
    )
    wrong = client.post(
        f"{API}/auth/token", data={"username": customer.email, "password": "wrong-password-1"}
    )
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()
    failures = client.get(f"{API}/audit", headers=admin.headers, params={"kind": "login_failed"})
    emails = [e["detail"]["email"] for e in failures.json()["items"]]
    assert {"nobody@example.com", customer.email} <= set(emails)
    assert all(e["address"] for e in failures.json()["items"])
    assert_error(client.get(f"{API}/audit", headers=customer.headers), 403, "forbidden")


# --- devices ----------------------------------------------------------------------------------


def test_admins_issue_and_revoke_device_tokens_that_can_do_nothing_else(
    client: TestClient, actors: Actors, manager: Actor
) -> None:
    admin = actors.make(Role.ADMIN)
    body = {"label": "cold room sensor 1", "scope": "warehouse:BER"}
    assert_error(client.post(f"{API}/devices", headers=manager.headers, json=body), 403)
    r = client.post(f"{API}/devices", headers=admin.headers, json=body)
    assert r.status_code == 201, r.text
    device = r.json()
    headers = _bearer(device["token"])

    assert client.get(f"{API}/me", headers=headers).json()["role"] == "device"
    assert_error(client.post(f"{API}/products", headers=headers, json=product("X")), 403)
    order = {"lines": [{"sku": "X", "qty": 1}]}
    r = client.post(f"{API}/orders", headers={**headers, "Idempotency-Key": "d"}, json=order)
    assert_error(r, 403)
    assert [d["id"] for d in client.get(f"{API}/devices", headers=admin.headers).json()] == [
        device["id"]
    ]
    assert all(
        u["role"] != "device" for u in client.get(f"{API}/users", headers=admin.headers).json()
    )

    r = client.delete(f"{API}/devices/{device['id']}", headers=admin.headers)
    assert r.status_code == 200 and r.json()["revoked_at"]
    assert_error(client.get(f"{API}/me", headers=headers), 401, "invalid_token")
    # A device token cannot be turned into a session by the password form.
    assert _audit_kinds(client, admin, kind="device_revoked") == ["device_revoked"]


@pytest.mark.parametrize("scope", ["warehouse:", "everything", "warehouse:BER;DROP", ""])
def test_a_device_scope_must_name_one_warehouse(
    client: TestClient, actors: Actors, scope: str
) -> None:
    admin = actors.make(Role.ADMIN)
    r = client.post(f"{API}/devices", headers=admin.headers, json={"label": "x", "scope": scope})
    assert_error(r, 422, "validation_error")
