"""A device token's purpose: a sensor sends readings only, a till (or handheld) syncs and reads."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from fastapi.testclient import TestClient

from storekeeper.accounts import authentication
from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import Container
from storekeeper.errors import PermissionDenied
from tests.conftest import Actor, Actors
from tests.e2e.api_support import API, assert_error
from tests.shop import add_warehouses


def _device(client: TestClient, admin: Actor, purpose: str | None) -> tuple[str, dict[str, str]]:
    body: dict[str, str] = {"label": f"dev-{purpose}", "scope": "warehouse:BER"}
    if purpose is not None:
        body["purpose"] = purpose
    r = client.post(f"{API}/devices", headers=admin.headers, json=body)
    assert r.status_code == 201, r.text
    assert r.json()["purpose"] == purpose
    return r.json()["token"], {"Authorization": f"Bearer {r.json()['token']}"}


def _readings(client: TestClient, headers: dict[str, str], sensor: str) -> httpx.Response:
    reading = {"sensor": sensor, "ts": datetime.now(UTC).isoformat(), "temp_c": 4.0}
    return client.post(f"{API}/telemetry", headers=headers, json={"readings": [reading]})


def _push(client: TestClient, headers: dict[str, str]) -> httpx.Response:
    return client.post(
        f"{API}/sync/push", headers=headers, json={"replica_id": "till-1", "mutations": []}
    )


def _pull(client: TestClient, headers: dict[str, str]) -> httpx.Response:
    return client.get(f"{API}/sync/pull?scope=warehouse:BER", headers=headers)


@pytest.fixture
def admin(client: TestClient, actors: Actors) -> Actor:
    made = actors.make(Role.ADMIN)
    add_warehouses(client, made.headers)
    sensor = {"id": "cold-1", "warehouse": "BER", "room": "cold", "min_temp_c": 2, "max_temp_c": 8}
    assert client.post(f"{API}/sensors", headers=made.headers, json=sensor).status_code == 201
    return made


def test_a_sensor_token_sends_readings_but_cannot_sync(client: TestClient, admin: Actor) -> None:
    _, sensor = _device(client, admin, "sensor")

    sent = _readings(client, sensor, "cold-1")
    pushed = _push(client, sensor)
    pulled = _pull(client, sensor)

    assert sent.status_code == 200, sent.text
    assert sent.json()["results"][0]["stored"] is True
    assert_error(pushed, 403, "purpose_not_allowed")
    assert_error(pulled, 403, "purpose_not_allowed")


def test_a_till_token_syncs_and_reads_but_cannot_send_readings(
    client: TestClient, admin: Actor
) -> None:
    _, till = _device(client, admin, "till")

    pushed = _push(client, till)
    pulled = _pull(client, till)
    sent = _readings(client, till, "cold-1")

    assert pushed.status_code == 200, pushed.text
    assert pulled.status_code == 200, pulled.text
    assert_error(sent, 403, "purpose_not_allowed")


def test_the_telemetry_transports_refuse_a_till_token_and_admit_a_sensor_token(
    client: TestClient, admin: Actor, container: Container
) -> None:
    till_token, _ = _device(client, admin, "till")
    sensor_token, _ = _device(client, admin, "sensor")
    # What the TCP line protocol's AUTH and the MQTT subscriber call for each token.
    check = container.authenticator.principal

    sensor = asyncio.run(check(sensor_token, allowed_types=authentication.DEVICE_TOKENS))
    with pytest.raises(PermissionDenied) as refused:
        asyncio.run(check(till_token, allowed_types=authentication.DEVICE_TOKENS))

    assert sensor.purpose == "sensor"
    assert refused.value.code == "purpose_not_allowed"


def test_a_device_token_without_purpose_keeps_syncing_and_sending_readings(
    client: TestClient, admin: Actor
) -> None:
    _, legacy = _device(client, admin, None)

    assert _push(client, legacy).status_code == 200
    assert _readings(client, legacy, "cold-1").status_code == 200


def test_a_device_purpose_outside_sensor_and_till_is_422(client: TestClient, admin: Actor) -> None:
    r = client.post(
        f"{API}/devices",
        headers=admin.headers,
        json={"label": "x", "scope": "warehouse:BER", "purpose": str(uuid.uuid4())[:8]},
    )
    assert_error(r, 422, "validation_error")
