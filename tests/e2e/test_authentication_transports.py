"""One table of tokens, run through every transport: each must give the verdict the row states.

HTTP, SSE and WebSocket go to a real API process; gRPC, the telemetry TCP line protocol and MQTT
(the system Mosquitto) are served in this process from the same database. They all call
``accounts.authentication.authenticate``; this test is what keeps them from drifting apart.
HTTP, SSE, WebSocket and gRPC take a person's access token or a device's token; TCP and MQTT
only a device's token.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

import httpx
import pytest
import websockets
from prometheus_client import REGISTRY

from storekeeper.accounts import devices, security, sessions, users
from storekeeper.accounts.domain import Principal, Role
from storekeeper.accounts.keys import Keyring
from storekeeper.accounts.models import User
from storekeeper.accounts.schemas import TokenPair
from storekeeper.bootstrap import Container
from storekeeper.config import Settings
from storekeeper.grpc.client import InventoryClient, InventoryError
from storekeeper.telemetry.mqtt import MqttOptions
from tests.conftest import Actors, LiveServer
from tests.e2e.test_telemetry_transports import (
    LIVENESS_S,
    _options,
    _Peer,
    _publish,
    _reading,
    _sensor_and_token,
    _stored,
    _subscribed,
    _tcp_server,
    _topic,
)
from tests.shop import add_product

pytestmark = [pytest.mark.live]

OK = "ok"
"""The verdict of an accepted token; a refusal's verdict is its error code."""
INVALID, SET_UP_2FA = "invalid_token", "two_factor_setup_required"
CALLER_TRANSPORTS = ("http", "sse", "websocket", "grpc")
DEVICE_TRANSPORTS = ("tcp", "mqtt")
SKU = "AUTH-1"
PASSWORD = "correct-horse-battery"

# name of the token -> verdict on HTTP, SSE, WebSocket and gRPC; verdict on TCP and MQTT.
ROWS: list[tuple[str, str, str]] = [
    ("clerk access token", OK, INVALID),  # a person's token is not a device's
    ("device token", OK, OK),
    ("access token signed with another key", INVALID, INVALID),
    ("device token signed with another key", INVALID, INVALID),
    ("expired access token", INVALID, INVALID),
    ("expired device token", INVALID, INVALID),
    ("access token of a logged-out session", INVALID, INVALID),
    ("token of a revoked device", INVALID, INVALID),
    ("access token of a deactivated account", INVALID, INVALID),
    ("device token of a deactivated device account", INVALID, INVALID),
    ("refresh token", INVALID, INVALID),
    ("service token", INVALID, INVALID),
    ("manager who must set up two-factor", SET_UP_2FA, INVALID),
]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Managers must use two-factor sign-in (for the row of a manager who has not set it up)."""
    return settings.model_copy(update={"require_2fa_roles": ["manager"]})


def _person(container: Container, role: Role) -> tuple[User, TokenPair]:
    with container.db.transaction() as session:
        email = f"{role.value}-{uuid.uuid4().hex[:8]}@example.com"
        user = users.create_user(session, email=email, password=PASSWORD, role=role)
        pair = sessions.open_session_for(
            session, container.settings, key=container.signing_key, user=user
        )
    return user, pair


def _reissued(token: str, container: Container, *, key: Keyring | None = None, ttl_s: int) -> str:
    """A token naming the same account and session as ``token``, signed with ``key``."""
    claims = security.decode_token(
        token, key=container.signing_key, expected_types=("access", "device")
    )
    return security.issue_token(
        key=key or container.signing_key,
        user_id=claims.user_id,
        session_id=claims.session_id,
        token_type=claims.token_type,
        ttl=timedelta(seconds=ttl_s),
    )


def _device(container: Container, actors: Actors) -> str:
    return _sensor_and_token(container, actors)[1]


def _tokens(container: Container, actors: Actors) -> dict[str, str]:
    """One token per row of ``ROWS``, each in the state its name says."""
    other_key = Keyring("another-secret-key-that-is-long-enough-for-hs256-987654321")
    _, clerk = _person(container, Role.CLERK)
    _, device = _sensor_and_token(container, actors)
    logged_out_user, logged_out = _person(container, Role.CLERK)
    deactivated_user, deactivated = _person(container, Role.CLERK)
    revoked_device, deactivated_device = _device(container, actors), _device(container, actors)
    _, manager = _person(container, Role.MANAGER)
    with container.db.transaction() as session:
        claims = security.decode_token(
            logged_out.access_token, key=container.signing_key, expected_types=("access",)
        )
        sessions.logout(
            session,
            principal=Principal(logged_out_user.id, Role.CLERK, session_id=claims.session_id),
        )
        revoked = security.decode_token(
            revoked_device, key=container.signing_key, expected_types=("device",)
        )
        devices.revoke_device(session, device_id=revoked.session_id, actor_id=uuid.uuid4())
        # Only the flag: a disabled account is refused even if its sessions were left alive.
        users.get_or_raise(session, user_id=deactivated_user.id).is_active = False
        device_user = security.decode_token(
            deactivated_device, key=container.signing_key, expected_types=("device",)
        ).user_id
        users.get_or_raise(session, user_id=device_user).is_active = False
    tokens = {
        "clerk access token": clerk.access_token,
        "device token": device,
        "access token signed with another key": _reissued(
            clerk.access_token, container, key=other_key, ttl_s=600
        ),
        "device token signed with another key": _reissued(
            device, container, key=other_key, ttl_s=600
        ),
        "expired access token": _reissued(clerk.access_token, container, ttl_s=-60),
        "expired device token": _reissued(device, container, ttl_s=-60),
        "access token of a logged-out session": logged_out.access_token,
        "token of a revoked device": revoked_device,
        "access token of a deactivated account": deactivated.access_token,
        "device token of a deactivated device account": deactivated_device,
        "refresh token": clerk.refresh_token,
        "service token": security.issue_service_token(key=container.signing_key),
        "manager who must set up two-factor": manager.access_token,
    }
    assert sorted(tokens) == sorted(name for name, _, _ in ROWS)
    return tokens


# --- one verdict per transport ------------------------------------------------------------


def _code(body: bytes) -> str:
    return str(json.loads(body)["code"])


async def _http(server: LiveServer, token: str) -> str:
    async with httpx.AsyncClient(base_url=server.url, timeout=LIVENESS_S) as client:
        # Any signed-in caller may list warehouses, devices included; two-factor is enforced.
        r = await client.get("/api/v1/warehouses", headers={"Authorization": f"Bearer {token}"})
    return OK if r.status_code == 200 else _code(r.content)


async def _sse(server: LiveServer, token: str) -> str:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=LIVENESS_S) as client,
        client.stream("GET", "/api/v1/events", headers=headers) as r,
    ):
        return OK if r.status_code == 200 else _code(await r.aread())


async def _websocket(server: LiveServer, token: str) -> str:
    url = server.url.replace("http://", "ws://") + f"/api/v1/live?token={token}"
    try:
        async with websockets.connect(url, open_timeout=LIVENESS_S):
            return OK
    except websockets.InvalidStatus as refused:
        return _code(refused.response.body or b"{}")


def _grpc(target: str, token: str) -> str:
    with InventoryClient(target, token, timeout_s=LIVENESS_S) as client:
        try:
            client.get_stock(SKU)
        except InventoryError as exc:
            return exc.code
    return OK


async def _tcp(port: int, token: str) -> str:
    peer = await _Peer.open(port)
    try:
        (answer,) = await peer.ask(f"AUTH {token}")
    finally:
        peer.close()
    return answer.removeprefix("err ")


def _mqtt_rejections() -> dict[str, float]:
    """Readings refused over MQTT so far in this process, by reason."""
    return {
        sample.labels["reason"]: sample.value
        for metric in REGISTRY.collect()
        if metric.name == "storekeeper_telemetry_readings"
        for sample in metric.samples
        if sample.name.endswith("_total")
        and sample.labels.get("transport") == "mqtt"
        and sample.labels.get("outcome") == "rejected"
    }


async def _mqtt(container: Container, options: MqttOptions, sensor: str, token: str, n: int) -> str:
    """Publish one reading with ``token``; it is either stored or counted as refused."""
    stored, refused = _stored(container, sensor), _mqtt_rejections()
    await _publish(options.url, _topic(options, sensor), _reading(token, n / 10))
    deadline = asyncio.get_running_loop().time() + LIVENESS_S
    while asyncio.get_running_loop().time() < deadline:
        if _stored(container, sensor) > stored:
            return OK
        now = _mqtt_rejections()
        grown = [reason for reason, value in now.items() if value > refused.get(reason, 0.0)]
        if grown:
            return grown[0]
        await asyncio.sleep(0.05)
    raise AssertionError("the MQTT reading was neither stored nor refused")


# --- the table ----------------------------------------------------------------------------


def test_every_transport_gives_each_token_the_same_verdict(
    container: Container, actors: Actors, live_server: LiveServer, grpc_target: str
) -> None:
    admin = actors.make(Role.ADMIN)  # admins need no two-factor here: they set up the shop
    with httpx.Client(base_url=live_server.url, timeout=LIVENESS_S) as api:
        add_product(api, admin.headers, SKU)  # type: ignore[arg-type]
    sensor, _ = _sensor_and_token(container, actors)  # MQTT readings go to this sensor
    tokens = _tokens(container, actors)
    options = _options()

    async def scenario() -> dict[str, dict[str, str]]:
        seen: dict[str, dict[str, str]] = {}
        async with _tcp_server(container) as tcp, _subscribed(container, options):
            for n, (name, _, _) in enumerate(ROWS, start=1):
                token = tokens[name]
                seen[name] = {
                    "http": await _http(live_server, token),
                    "sse": await _sse(live_server, token),
                    "websocket": await _websocket(live_server, token),
                    "grpc": await asyncio.to_thread(_grpc, grpc_target, token),
                    "tcp": await _tcp(tcp.port, token),
                    "mqtt": await _mqtt(container, options, sensor, token, n),
                }
        return seen

    seen = asyncio.run(scenario())
    expected = {
        name: {t: caller for t in CALLER_TRANSPORTS} | {t: device for t in DEVICE_TRANSPORTS}
        for name, caller, device in ROWS
    }
    assert seen == expected
