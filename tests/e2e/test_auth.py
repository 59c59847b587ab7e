"""Accounts through the HTTP API: registration, tokens, refresh, token checks and user admin."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from storekeeper.accounts import security
from storekeeper.accounts.domain import Role
from storekeeper.accounts.models import User
from storekeeper.bootstrap import Container
from tests.conftest import Actor, Actors
from tests.e2e.api_support import API, assert_error, product

PASSWORD = "correct-horse-battery"


def _register(client: TestClient, email: str, password: str = PASSWORD) -> Any:
    return client.post(f"{API}/auth/register", json={"email": email, "password": password})


def _login(client: TestClient, email: str, password: str = PASSWORD) -> Any:
    return client.post(f"{API}/auth/token", data={"username": email, "password": password})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _tokens(client: TestClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    r = _login(client, email, password)
    assert r.status_code == 200, r.text
    pair: dict[str, Any] = r.json()
    return pair


# --- registration -----------------------------------------------------------------------------


def test_registration_creates_an_active_customer(client: TestClient) -> None:
    r = _register(client, "Ada@Example.com")

    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {
        "id",
        "email",
        "role",
        "is_active",
        "warehouses",
        "two_factor_enabled",
        "created_at",
    }
    assert uuid.UUID(body["id"])
    assert body["email"] == "ada@example.com"
    assert body["role"] == "customer"
    assert body["is_active"] is True


def test_registering_an_e_mail_again_in_any_case_is_409(client: TestClient) -> None:
    _register(client, "bob@example.com")

    for email in ("bob@example.com", "BOB@EXAMPLE.COM", " Bob@example.com "):
        r = _register(client, email, password="another-password-1")
        assert_error(r, 409, "duplicate_email")
    assert _login(client, "bob@example.com").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"email": "carol@example.com", "password": "123456789"},
        {"email": "carol@example.com", "password": "x" * 257},
        {"email": "not-an-e-mail", "password": PASSWORD},
        {"email": "carol@", "password": PASSWORD},
        {"email": "", "password": PASSWORD},
        {"email": "carol@example.com"},
        {"email": "carol@example.com", "password": PASSWORD, "role": "admin"},
    ],
    ids=[
        "short-password",
        "long-password",
        "no-at",
        "no-domain",
        "empty-email",
        "no-password",
        "self-chosen-role",
    ],
)
def test_invalid_registration_is_422_and_creates_nobody(
    client: TestClient, body: dict[str, Any]
) -> None:
    assert_error(client.post(f"{API}/auth/register", json=body), 422, "validation_error")
    assert_error(_login(client, "carol@example.com"), 401, "invalid_credentials")


# --- tokens -----------------------------------------------------------------------------------


def test_password_form_returns_an_access_and_a_refresh_token(client: TestClient) -> None:
    registered = _register(client, "dan@example.com").json()

    r = _login(client, "DAN@example.com")

    assert r.status_code == 200, r.text
    pair = r.json()
    assert pair["token_type"] == "bearer"
    assert pair["expires_in"] == 900
    assert pair["access_token"] != pair["refresh_token"]
    me = client.get(f"{API}/me", headers=_bearer(pair["access_token"]))
    assert me.status_code == 200
    assert me.json() == registered


def test_wrong_password_and_unknown_e_mail_get_the_same_401(client: TestClient) -> None:
    _register(client, "eve@example.com")

    wrong_password = _login(client, "eve@example.com", "not-the-password")
    unknown_email = _login(client, "nobody@example.com", "not-the-password")

    assert_error(wrong_password, 401, "invalid_credentials")
    assert wrong_password.json() == unknown_email.json()
    assert wrong_password.status_code == unknown_email.status_code
    assert wrong_password.headers["www-authenticate"] == unknown_email.headers["www-authenticate"]


@pytest.mark.parametrize(
    "form",
    [{"username": "eve@example.com"}, {"password": PASSWORD}, {}],
    ids=["no-password", "no-username", "empty"],
)
def test_token_request_missing_a_field_is_422(client: TestClient, form: dict[str, str]) -> None:
    assert_error(client.post(f"{API}/auth/token", data=form), 422, "validation_error")


def test_token_request_as_json_instead_of_a_form_is_422(client: TestClient) -> None:
    _register(client, "fay@example.com")

    r = client.post(f"{API}/auth/token", json={"username": "fay@example.com", "password": PASSWORD})

    assert_error(r, 422, "validation_error")


def test_me_without_a_token_is_401(client: TestClient) -> None:
    r = client.get(f"{API}/me")

    assert_error(r, 401, "not_authenticated")
    assert r.headers["www-authenticate"] == "Bearer"


def test_refresh_gives_a_new_working_pair(client: TestClient) -> None:
    _register(client, "gus@example.com")
    first = _tokens(client, "gus@example.com")

    r = client.post(f"{API}/auth/refresh", json={"refresh_token": first["refresh_token"]})

    assert r.status_code == 200, r.text
    second = r.json()
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    me = client.get(f"{API}/me", headers=_bearer(second["access_token"]))
    assert me.json()["email"] == "gus@example.com"
    again = client.post(f"{API}/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert again.status_code == 200


def test_access_and_refresh_tokens_are_not_interchangeable(client: TestClient) -> None:
    _register(client, "hal@example.com")
    pair = _tokens(client, "hal@example.com")

    access_as_refresh = client.post(
        f"{API}/auth/refresh", json={"refresh_token": pair["access_token"]}
    )
    refresh_as_access = client.get(f"{API}/me", headers=_bearer(pair["refresh_token"]))

    assert_error(access_as_refresh, 401, "invalid_token")
    assert_error(refresh_as_access, 401, "invalid_token")


@pytest.mark.parametrize(
    "body", [{}, {"refresh_token": ""}, {"refresh_token": 5}, {"refresh_token": "x", "extra": 1}]
)
def test_malformed_refresh_request_is_422(client: TestClient, body: dict[str, Any]) -> None:
    assert_error(client.post(f"{API}/auth/refresh", json=body), 422, "validation_error")


def test_refresh_is_refused_once_the_account_is_disabled(
    client: TestClient, container: Container
) -> None:
    _register(client, "ivy@example.com")
    pair = _tokens(client, "ivy@example.com")
    # No endpoint disables accounts yet; flip the flag where an admin tool would.
    with container.db.transaction() as session:
        session.execute(update(User).where(User.email == "ivy@example.com").values(is_active=False))

    refreshed = client.post(f"{API}/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    login = _login(client, "ivy@example.com")

    assert_error(refreshed, 401, "invalid_token")
    assert_error(login, 401, "invalid_credentials")
    assert login.json() == _login(client, "nobody@example.com").json()


# --- forged and damaged tokens ----------------------------------------------------------------


def _claims(own: str, **overrides: Any) -> dict[str, Any]:
    """Claims like those of the caller's own token ``own`` (same user and live session)."""
    issued = jwt.decode(own, options={"verify_signature": False})
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "iss": security.ISSUER,
        "aud": security.AUDIENCE,
        "sub": issued["sub"],
        "sid": issued["sid"],
        "typ": "access",
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(minutes=5),
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _retagged(token: str, role: str) -> str:
    """``token`` with its payload's role changed and the original signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return ".".join((header, _b64({**claims, "role": role}), signature))


BadToken = Callable[[str, str], str]
BAD_TOKENS: dict[str, BadToken] = {
    "expired": lambda key, own: jwt.encode(
        _claims(
            own,
            exp=datetime.now(UTC) - timedelta(seconds=5),
            iat=datetime.now(UTC) - timedelta(minutes=10),
            nbf=datetime.now(UTC) - timedelta(minutes=10),
        ),
        key,
        algorithm="HS256",
    ),
    "tampered-role": lambda _, own: _retagged(own, "admin"),
    "alg-none": lambda _, own: jwt.encode(_claims(own), None, algorithm="none"),
    "alg-none-unsigned-header": lambda _, own: (
        _b64({"alg": "none", "typ": "JWT"})
        + "."
        + _b64({k: str(v) for k, v in _claims(own).items()})
        + "."
    ),
    # Algorithm confusion: an RS256 token (as if signed with a private key whose public half an
    # attacker hopes we verify with) must be refused by the HS256 allowlist before any key use.
    "rs256-header": lambda _, own: (
        _b64({"alg": "RS256", "typ": "JWT"})
        + "."
        + _b64({k: str(v) for k, v in _claims(own).items()})
        + "."
        + base64.urlsafe_b64encode(b"x" * 256).decode().rstrip("=")
    ),
    "other-key": lambda _, own: jwt.encode(_claims(own), "x" * 64, algorithm="HS256"),
    "hs384": lambda key, own: jwt.encode(_claims(own), key, algorithm="HS384"),
    "wrong-audience": lambda key, own: jwt.encode(
        _claims(own, aud="someone-else"), key, algorithm="HS256"
    ),
    "wrong-issuer": lambda key, own: jwt.encode(_claims(own, iss="evil"), key, algorithm="HS256"),
    "no-expiry": lambda key, own: jwt.encode(_claims(own, exp=None), key, algorithm="HS256"),
    "not-yet-valid": lambda key, own: jwt.encode(
        _claims(own, nbf=datetime.now(UTC) + timedelta(minutes=5)), key, algorithm="HS256"
    ),
    "subject-not-a-uuid": lambda key, own: jwt.encode(
        _claims(own, sub="admin"), key, algorithm="HS256"
    ),
    "no-session": lambda key, own: jwt.encode(_claims(own, sid=None), key, algorithm="HS256"),
    "other-session": lambda key, own: jwt.encode(
        _claims(own, sid=str(uuid.uuid4())), key, algorithm="HS256"
    ),
    "refresh-type": lambda key, own: jwt.encode(
        _claims(own, typ="refresh"), key, algorithm="HS256"
    ),
    "garbage": lambda *_: "not.a.token",
    "truncated": lambda _, own: own[:-10],
}


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_forged_expired_or_damaged_tokens_are_401(
    client: TestClient, container: Container, customer: Actor, kind: str
) -> None:
    own = customer.headers["Authorization"].removeprefix("Bearer ")
    token = BAD_TOKENS[kind](container.signing_key.root_secret, own)

    me = client.get(f"{API}/me", headers=_bearer(token))
    write = client.post(f"{API}/products", headers=_bearer(token), json=product("FORGED"))
    users = client.get(f"{API}/users", headers=_bearer(token))

    for r in (me, write, users):
        assert_error(r, 401, "invalid_token")
        assert r.headers["www-authenticate"] == "Bearer"
    assert_error(client.get(f"{API}/products/FORGED"), 404, "unknown_sku")


def test_a_well_signed_token_is_accepted_and_its_role_claim_means_nothing(
    client: TestClient, container: Container, customer: Actor
) -> None:
    # The control for the forgeries above: the same claims, properly signed, do work. A role
    # claim in it is ignored: the role is the account's, read on every request.
    own = customer.headers["Authorization"].removeprefix("Bearer ")
    token = jwt.encode(
        _claims(own, role="admin"), container.signing_key.root_secret, algorithm="HS256"
    )

    assert client.get(f"{API}/me", headers=_bearer(token)).json()["email"] == customer.email
    assert_error(client.get(f"{API}/users", headers=_bearer(token)), 403, "forbidden")


# --- users (admin only) -----------------------------------------------------------------------


def test_admin_creates_users_of_any_role_who_can_then_sign_in(
    client: TestClient, actors: Actors
) -> None:
    admin = actors.make(Role.ADMIN)

    r = client.post(
        f"{API}/users",
        headers=admin.headers,
        json={"email": "Mia@Example.com", "password": PASSWORD, "role": "manager"},
    )
    pair = _tokens(client, "mia@example.com")
    listed = client.get(f"{API}/users", headers=admin.headers)

    assert r.status_code == 201, r.text
    assert (r.json()["email"], r.json()["role"]) == ("mia@example.com", "manager")
    assert client.get(f"{API}/me", headers=_bearer(pair["access_token"])).json() == r.json()
    assert listed.status_code == 200
    assert {u["email"]: u["role"] for u in listed.json()} == {
        admin.email: "admin",
        "mia@example.com": "manager",
    }
    assert all("password" not in key for u in listed.json() for key in u)


def test_admin_cannot_create_a_second_account_with_the_same_e_mail(
    client: TestClient, actors: Actors
) -> None:
    admin = actors.make(Role.ADMIN)
    body = {"email": "ned@example.com", "password": PASSWORD, "role": "clerk"}
    client.post(f"{API}/users", headers=admin.headers, json=body)

    r = client.post(
        f"{API}/users",
        headers=admin.headers,
        json={**body, "email": "NED@example.com", "role": "admin"},
    )

    assert_error(r, 409, "duplicate_email")


@pytest.mark.parametrize("role", ["root", "", None])
def test_admin_must_name_a_known_role(client: TestClient, actors: Actors, role: str | None) -> None:
    admin = actors.make(Role.ADMIN)

    r = client.post(
        f"{API}/users",
        headers=admin.headers,
        json={"email": "olga@example.com", "password": PASSWORD, "role": role},
    )

    assert_error(r, 422, "validation_error")


@pytest.mark.parametrize("role", [Role.MANAGER, Role.CLERK, Role.CUSTOMER, Role.DEVICE])
def test_only_admins_may_create_or_list_users(
    client: TestClient, actors: Actors, role: Role
) -> None:
    caller = actors.make(role)

    created = client.post(
        f"{API}/users",
        headers=caller.headers,
        json={"email": "pat@example.com", "password": PASSWORD, "role": "admin"},
    )
    listed = client.get(f"{API}/users", headers=caller.headers)

    assert_error(created, 403, "forbidden")
    assert_error(listed, 403, "forbidden")
    assert_error(_login(client, "pat@example.com"), 401, "invalid_credentials")


def test_anonymous_callers_cannot_create_or_list_users(client: TestClient) -> None:
    created = client.post(
        f"{API}/users", json={"email": "quin@example.com", "password": PASSWORD, "role": "admin"}
    )

    assert_error(created, 401, "not_authenticated")
    assert_error(client.get(f"{API}/users"), 401, "not_authenticated")


def test_the_role_in_a_signed_in_token_decides_what_it_may_do(
    client: TestClient, actors: Actors
) -> None:
    admin = actors.make(Role.ADMIN)
    for email, role in (("rex@example.com", "customer"), ("sam@example.com", "manager")):
        client.post(
            f"{API}/users",
            headers=admin.headers,
            json={"email": email, "password": PASSWORD, "role": role},
        )
    as_customer = _bearer(_tokens(client, "rex@example.com")["access_token"])
    as_manager = _bearer(_tokens(client, "sam@example.com")["access_token"])

    by_customer = client.post(f"{API}/products", headers=as_customer, json=product("C-1"))
    by_manager = client.post(f"{API}/products", headers=as_manager, json=product("M-1"))

    assert_error(by_customer, 403, "forbidden")
    assert by_manager.status_code == 201
    assert_error(client.get(f"{API}/users", headers=as_manager), 403, "forbidden")
