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


def test_no_account_becomes_a_device_nor_a_device_a_person(
    client: TestClient, actors: Actors
) -> None:
    admin = actors.make(Role.ADMIN)
    clerk = actors.make(Role.CLERK)
    device = actors.make(Role.DEVICE)

    to_device = client.patch(
        f"{API}/users/{clerk.id}", headers=admin.headers, json={"role": "device"}
    )
    to_person = client.patch(
        f"{API}/users/{device.id}", headers=admin.headers, json={"role": "clerk"}
    )

    assert (to_device.status_code, to_device.json()["code"]) == (422, "is_a_device")
    assert (to_person.status_code, to_person.json()["code"]) == (422, "is_a_device")
    assert client.get(f"{API}/me", headers=clerk.headers).json()["role"] == "clerk"


def test_the_last_active_admin_can_neither_demote_nor_disable_itself(
    client: TestClient, actors: Actors
) -> None:
    admin = actors.make(Role.ADMIN)
    url = f"{API}/users/{admin.id}"

    demote = client.patch(url, headers=admin.headers, json={"role": "manager"})
    disable = client.patch(url, headers=admin.headers, json={"is_active": False})

    assert (demote.status_code, demote.json()["code"]) == (409, "last_admin")
    assert (disable.status_code, disable.json()["code"]) == (409, "last_admin")
    second = actors.make(Role.ADMIN)
    assert client.patch(url, headers=second.headers, json={"role": "manager"}).status_code == 200
    last = client.patch(f"{API}/users/{second.id}", headers=second.headers, json={"role": "clerk"})
    assert (last.status_code, last.json()["code"]) == (409, "last_admin")


def test_a_clerk_cannot_be_assigned_to_a_warehouse_that_does_not_exist(
    client: TestClient, actors: Actors
) -> None:
    admin = actors.make(Role.ADMIN)
    clerk = actors.make(Role.CLERK)
    made = client.post(
        f"{API}/warehouses",
        headers=admin.headers,
        json={"code": "BER", "name": "Berlin", "lat": 52.5, "lon": 13.4},
    )
    assert made.status_code == 201, made.text

    unknown = client.patch(
        f"{API}/users/{clerk.id}", headers=admin.headers, json={"warehouses": ["BER", "NOPE"]}
    )
    created = client.post(
        f"{API}/users",
        headers=admin.headers,
        json={
            "email": "new-clerk@example.com",
            "password": "correct-horse-battery",
            "role": "clerk",
            "warehouses": ["NOPE"],
        },
    )
    known = client.patch(
        f"{API}/users/{clerk.id}", headers=admin.headers, json={"warehouses": ["BER"]}
    )

    assert (unknown.status_code, unknown.json()["code"]) == (422, "unknown_warehouse")
    assert (created.status_code, created.json()["code"]) == (422, "unknown_warehouse")
    assert known.status_code == 200 and known.json()["warehouses"] == ["BER"]


def test_a_device_token_cannot_set_up_two_factor(client: TestClient, actors: Actors) -> None:
    device = actors.make(Role.DEVICE)

    setup = client.post(f"{API}/auth/2fa/setup", headers=device.headers)
    enable = client.post(f"{API}/auth/2fa/enable", headers=device.headers, json={"code": "123456"})

    assert (setup.status_code, setup.json()["code"]) == (403, "is_a_device")
    assert enable.status_code == 403
