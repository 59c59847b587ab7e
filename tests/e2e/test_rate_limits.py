"""Rate limits on sign-in, sign-up, token refresh and ordering: per account and per address.

Each test sets its own small limits and its own Redis key prefix, so tests share the Redis server
in parallel. Windows are 10 seconds, long next to a test's burst of requests (GCRA earns one
request back every period/count) and short enough to wait one slot out.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from storekeeper.accounts.domain import Role
from storekeeper.api.app import create_app
from storekeeper.api.limit_rules import Limit, parse_limits
from storekeeper.bootstrap import bootstrap
from storekeeper.config import Settings
from tests.conftest import Actor, Actors, LiveServer, start_server, stop_server
from tests.e2e.api_support import API, assert_error
from tests.processes import free_port
from tests.shop import BREMEN, add_product, add_warehouses

REDIS_URL = "redis://127.0.0.1:6379/0"
NO_LIMITS = {"login": "", "register": "", "refresh": "", "orders": ""}


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """Limits do not depend on the database; the two-process tests ask for PostgreSQL."""
    return str(request.param)


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> str:
    """Where the counters live: this process (embedded mode) or Redis (distributed mode)."""
    return str(request.param)


def _limited(
    settings: Settings, *, redis_url: str, enabled: bool = True, **limits: str
) -> Settings:
    """``settings`` with only ``limits`` (login=…, orders=…) and a key prefix of the test's own."""
    update: dict[str, object] = {
        f"rate_limit_{name}": text for name, text in {**NO_LIMITS, **limits}.items()
    }
    update.update(
        redis_url=redis_url,
        rate_limits_enabled=enabled,
        rate_limit_prefix=f"test:{uuid.uuid4().hex}",
    )
    return Settings.model_validate({**settings.model_dump(), **update})


@dataclass
class Shop:
    """An app with the test's limits, in process, and a factory of its users."""

    client: TestClient
    actors: Actors


@pytest.fixture
def open_shop(settings: Settings, store: str) -> Iterator[Callable[..., Shop]]:
    """Opens the app with the given limits, counters in the test's ``store``."""
    with ExitStack() as stack:

        def open_(*, redis_url: str | None = None, enabled: bool = True, **limits: str) -> Shop:
            url = REDIS_URL if redis_url is None and store == "redis" else redis_url or ""
            limited = _limited(settings, redis_url=url, enabled=enabled, **limits)
            container = bootstrap(limited)
            stack.callback(container.close)
            app = create_app(container=container)
            client = stack.enter_context(TestClient(app, raise_server_exceptions=False))
            return Shop(client, Actors(container))

        yield open_


def _login(client: httpx.Client, email: str, password: str = "not-the-password") -> httpx.Response:
    return client.post(f"{API}/auth/token", data={"username": email, "password": password})


def _tokens(client: TestClient, who: Actor) -> dict[str, str]:
    r = _login(client, who.email, who.password)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _refresh(client: TestClient, token: str) -> httpx.Response:
    return client.post(f"{API}/auth/refresh", json={"refresh_token": token})


def _stock(shop: Shop) -> None:
    manager = shop.actors.make(Role.MANAGER)
    add_warehouses(shop.client, manager.headers)
    add_product(shop.client, manager.headers, "MILK", stock={"BER": 100})


def _order(client: TestClient, headers: dict[str, str]) -> httpx.Response:
    return client.post(
        f"{API}/orders",
        headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
        json={"lines": [{"sku": "MILK", "qty": 1}], "ship_to": BREMEN},
    )


def _assert_limited(response: httpx.Response) -> int:
    """A 429 in the error format; the Retry-After seconds."""
    assert_error(response, 429, "rate_limited")
    retry_after = int(response.headers["retry-after"])
    assert retry_after >= 1
    return retry_after


def test_sign_in_is_limited_per_account_then_per_address_until_the_window_passes(
    open_shop: Callable[..., Shop],
) -> None:
    # 30-second windows: six password checks on a loaded machine can take longer than the
    # 2.5 s in which a 10-second window of 4 earns a request back.
    shop = open_shop(login="2/30 seconds per account, 4/30 seconds per address")
    alice = shop.actors.make(Role.CUSTOMER)

    # The form reaches the app intact after the middleware has read it.
    assert _login(shop.client, alice.email, alice.password).status_code == 200
    assert _login(shop.client, alice.email.upper()).status_code == 401
    # However the e-mail is written, it is the same account.
    _assert_limited(_login(shop.client, f"  {alice.email.title()} "))
    # Other accounts go on until the address has spent its 4.
    assert _login(shop.client, "bob@example.com").status_code == 401
    assert _login(shop.client, "carol@example.com").status_code == 401
    retry_after = _assert_limited(_login(shop.client, "dave@example.com"))

    time.sleep(retry_after)
    assert _login(shop.client, "dave@example.com").status_code == 401


def test_registration_is_limited_per_address(open_shop: Callable[..., Shop]) -> None:
    shop = open_shop(register="2/10 seconds per address")

    password = f"pw-{uuid.uuid4().hex}"

    def register(email: str) -> httpx.Response:
        body = {"email": email, "password": password}
        return shop.client.post(f"{API}/auth/register", json=body)

    assert register("first@example.com").status_code == 201
    assert register("second@example.com").status_code == 201
    _assert_limited(register("third@example.com"))
    # The JSON body reached the app intact; the refused sign-up was never made.
    assert _login(shop.client, "second@example.com", password).status_code == 200
    assert _login(shop.client, "third@example.com", password).status_code == 401


def test_token_refresh_is_limited_per_account(open_shop: Callable[..., Shop]) -> None:
    shop = open_shop(refresh="2/10 seconds per account")
    alice, bob = shop.actors.make(Role.CUSTOMER), shop.actors.make(Role.CUSTOMER)
    token = _tokens(shop.client, alice)["refresh_token"]

    for _ in range(2):
        r = _refresh(shop.client, token)
        assert r.status_code == 200, r.text
        token = r.json()["refresh_token"]
    _assert_limited(_refresh(shop.client, token))

    assert _refresh(shop.client, _tokens(shop.client, bob)["refresh_token"]).status_code == 200


def test_orders_are_limited_per_account_and_per_address(open_shop: Callable[..., Shop]) -> None:
    shop = open_shop(orders="2/10 seconds per account, 3/10 seconds per address")
    _stock(shop)
    alice, bob, carol = (shop.actors.make(Role.CUSTOMER) for _ in range(3))

    assert _order(shop.client, alice.headers).status_code == 201
    assert _order(shop.client, alice.headers).status_code == 201
    _assert_limited(_order(shop.client, alice.headers))
    assert _order(shop.client, bob.headers).status_code == 201
    _assert_limited(_order(shop.client, carol.headers))


def test_forged_tokens_do_not_spend_the_victims_budget(open_shop: Callable[..., Shop]) -> None:
    shop = open_shop(orders="2/10 seconds per account", refresh="1/10 seconds per account")
    _stock(shop)
    victim = shop.actors.make(Role.CUSTOMER)
    tokens = _tokens(shop.client, victim)
    # The victim's own claims, signed with another key, and unsigned.
    access = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    refresh = jwt.decode(tokens["refresh_token"], options={"verify_signature": False})
    forged_access = [
        jwt.encode(access, "an-attacker-key-that-is-long-enough-0123456789", algorithm="HS256"),
        jwt.encode(access, None, algorithm="none"),
    ]
    forged_refresh = jwt.encode(refresh, "an-attacker-key-that-is-long-enough-0123456789")

    for forged in forged_access * 3:
        assert _order(shop.client, {"Authorization": f"Bearer {forged}"}).status_code == 401
    for _ in range(3):
        assert _refresh(shop.client, forged_refresh).status_code == 401

    assert _order(shop.client, victim.headers).status_code == 201
    assert _order(shop.client, victim.headers).status_code == 201
    assert _refresh(shop.client, tokens["refresh_token"]).status_code == 200


@pytest.mark.parametrize("store", ["redis"])
def test_redis_outage_lets_requests_through_and_warns_once(
    open_shop: Callable[..., Shop], caplog: pytest.LogCaptureFixture
) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    shop = open_shop(redis_url=closed, login="1/10 seconds per address")

    with caplog.at_level(logging.WARNING, logger="storekeeper.api.ratelimit"):
        statuses = [_login(shop.client, "alice@example.com").status_code for _ in range(3)]

    assert statuses == [401, 401, 401]
    warnings = [r for r in caplog.records if r.name == "storekeeper.api.ratelimit"]
    assert len(warnings) == 1, warnings
    assert "not enforced" in warnings[0].getMessage()


@pytest.mark.parametrize("store", ["memory"])
def test_limits_can_be_switched_off(open_shop: Callable[..., Shop]) -> None:
    shop = open_shop(enabled=False, login="1/10 seconds per address")

    assert [_login(shop.client, "alice@example.com").status_code for _ in range(3)] == [401] * 3


def test_settings_parse_limits_and_refuse_a_bad_one_naming_it(settings: Settings) -> None:
    assert parse_limits("5/minute per account, 20/10 Seconds per address") == (
        Limit(5, 60, "account"),
        Limit(20, 10, "address"),
    )
    assert parse_limits(" ") == ()

    for bad in ("5/fortnight per account", "5 per minute", "0/minute per address", "5/minute"):
        with pytest.raises(ValidationError, match="STOREKEEPER_RATE_LIMIT_ORDERS"):
            Settings.model_validate({**settings.model_dump(), "rate_limit_orders": bad})


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Callable[[Settings], LiveServer]]:
    """Starts API processes and stops them at the end."""
    started: list[LiveServer] = []

    def start(settings: Settings) -> LiveServer:
        server = start_server(settings, tmp_path / f"server-{uuid.uuid4().hex[:8]}.log")
        started.append(server)
        return server

    yield start
    for server in started:  # all at once: each takes a moment to shut down
        server.process.terminate()
    for server in started:
        stop_server(server)


def _alternate_logins(settings: Settings, start: Callable[[Settings], LiveServer]) -> list[int]:
    with ThreadPoolExecutor(2) as pool:
        clients = [
            httpx.Client(base_url=s.url, timeout=10) for s in pool.map(start, [settings] * 2)
        ]
    try:
        return [_login(clients[i % 2], "alice@example.com").status_code for i in range(8)]
    finally:
        for client in clients:
            client.close()


@pytest.mark.live
@pytest.mark.parametrize("backend", ["postgresql"])
def test_two_api_processes_share_one_budget_through_redis(
    settings: Settings, servers: Callable[[Settings], LiveServer]
) -> None:
    limited = _limited(settings, redis_url=REDIS_URL, login="5/minute per account")

    # Whichever process gets the 6th attempt refuses it.
    assert _alternate_logins(limited, servers) == [401] * 5 + [429] * 3


@pytest.mark.live
@pytest.mark.parametrize("backend", ["postgresql"])
def test_without_redis_each_process_has_a_budget_of_its_own(
    settings: Settings, servers: Callable[[Settings], LiveServer]
) -> None:
    limited = _limited(settings, redis_url="", login="3/minute per account")

    # Embedded mode is one process; two of them admit twice the limit (docs/security.md).
    assert _alternate_logins(limited, servers) == [401] * 6 + [429] * 2
