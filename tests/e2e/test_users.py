"""Admins change roles and disable accounts through PATCH /users/{id}."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from storekeeper.accounts.domain import Role
from tests.conftest import Actors

API = "/api/v1"


def _login(client: TestClient, email: str, password: str) -> int:
    form = {"username": email, "password": password}
    return client.post(f"{API}/auth/token", data=form).status_code


def test_admin_promotes_and_then_disables_an_account(client: TestClient, actors: Actors) -> None:
    admin = actors.make(Role.ADMIN)
    clerk = actors.make(Role.CLERK)

    promoted = client.patch(
        f"{API}/users/{clerk.id}", headers=admin.headers, json={"role": "manager"}
    )
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["role"] == "manager"
    assert _login(client, clerk.email, clerk.password) == 200

    disabled = client.patch(
        f"{API}/users/{clerk.id}", headers=admin.headers, json={"is_active": False}
    )
    assert disabled.json()["is_active"] is False
    assert _login(client, clerk.email, clerk.password) == 401
    assert client.get(f"{API}/me", headers=clerk.headers).status_code == 401


def test_only_admins_patch_users_and_unknown_ids_are_404(
    client: TestClient, actors: Actors
) -> None:
    admin = actors.make(Role.ADMIN)
    manager = actors.make(Role.MANAGER)
    customer = actors.make(Role.CUSTOMER)

    by_manager = client.patch(
        f"{API}/users/{customer.id}", headers=manager.headers, json={"role": "admin"}
    )
    unknown = client.patch(
        f"{API}/users/{uuid.uuid4()}", headers=admin.headers, json={"role": "clerk"}
    )
    bad_role = client.patch(
        f"{API}/users/{customer.id}", headers=admin.headers, json={"role": "owner"}
    )

    assert by_manager.status_code == 403
    assert (unknown.status_code, unknown.json()["code"]) == (404, "user_not_found")
    assert (bad_role.status_code, bad_role.json()["code"]) == (422, "validation_error")
