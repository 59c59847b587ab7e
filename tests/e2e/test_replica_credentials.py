"""A replica keeps syncing after its access token expired, and after being reopened: with a
sign-in's refresh token (rotated by the client, kept in the file) or with a device token.
A real server with the shortest access-token lifetime it accepts."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from storekeeper.accounts.domain import Role
from storekeeper.config import Settings
from storekeeper_client import Replica, SyncError
from tests.conftest import Actors, LiveServer, start_server, stop_server
from tests.shop import add_product, add_warehouses

pytestmark = pytest.mark.live

API = "/api/v1"
BER = "warehouse:BER"


def _stored(path: Path, key: str) -> str | None:
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def _wait_until_refused(server: LiveServer, access_token: str) -> None:
    """Until the server answers 401 to ``access_token`` (its lifetime is 30 s here)."""
    headers = {"Authorization": f"Bearer {access_token}"}
    for _ in range(300):
        if httpx.get(f"{server.url}{API}/me", headers=headers, timeout=10).status_code == 401:
            return
        time.sleep(0.5)
    raise AssertionError("the access token never expired")


def _on_hand(server: LiveServer, headers: dict[str, str], sku: str) -> int:
    answer = httpx.get(f"{server.url}{API}/stock/{sku}", headers=headers, timeout=10)
    (ber,) = [w for w in answer.json()["warehouses"] if w["warehouse"] == "BER"]
    return int(ber["on_hand"])


def test_a_replica_keeps_syncing_past_access_token_expiry_and_across_a_reopen(
    settings: Settings, actors: Actors, tmp_path: Path
) -> None:
    settings.access_token_ttl_s = 30  # the least the settings allow
    server = start_server(settings, tmp_path / "server.log")
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            manager = actors.make(Role.MANAGER)
            add_warehouses(http, manager.headers)  # type: ignore[arg-type]
            add_product(http, manager.headers, "MILK", stock={"BER": 10})  # type: ignore[arg-type]
            clerk = actors.make(Role.CLERK, warehouses=["BER"])
            signed_in = http.post(
                f"{API}/auth/token", data={"username": clerk.email, "password": clerk.password}
            )
            assert signed_in.status_code == 200, signed_in.text
        pair = signed_in.json()
        device_token = actors.make(Role.DEVICE, warehouses=["BER"]).headers["Authorization"][7:]

        till, handheld = tmp_path / "till.db", tmp_path / "handheld.db"
        with Replica(
            till, server.url, pair["access_token"], refresh_token=pair["refresh_token"], scope=BER
        ) as replica:
            replica.sell("MILK", 1)
            assert replica.sync().pushed == 1
        with Replica(handheld, server.url, device_token, scope=BER) as replica:
            replica.sell("MILK", 1)
            assert replica.sync().pushed == 1

        _wait_until_refused(server, pair["access_token"])

        # Reopened with no token at all: each file holds its credential.
        with Replica(till, server.url) as replica:
            replica.sell("MILK", 1)
            summary = replica.sync()
            assert (summary.pushed, summary.rejected) == (1, 0)
            replica.sell("MILK", 1)
            assert replica.sync().pushed == 1  # the renewed token goes on working
        with Replica(handheld, server.url) as replica:
            replica.sell("MILK", 1)
            assert replica.sync().pushed == 1

        # The file holds the rotated pair, not the spent one; it is readable by its owner only.
        assert _stored(till, "refresh_token") not in (None, pair["refresh_token"])
        assert _stored(till, "access_token") != pair["access_token"]
        assert till.stat().st_mode & 0o077 == 0
        fresh_manager = actors.make(Role.MANAGER)
        assert _on_hand(server, fresh_manager.headers, "MILK") == 10 - 5
    finally:
        stop_server(server)


def test_a_refresh_token_the_server_refuses_is_a_sync_error_that_says_sign_in_again(
    settings: Settings, actors: Actors, tmp_path: Path
) -> None:
    server = start_server(settings, tmp_path / "server.log")
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            manager = actors.make(Role.MANAGER)
            add_warehouses(http, manager.headers)  # type: ignore[arg-type]
        with (
            Replica(
                tmp_path / "till.db", server.url, "not-a-token", refresh_token="spent", scope=BER
            ) as replica,
            pytest.raises(SyncError, match="sign in again") as raised,
        ):
            replica.sync()
        assert raised.value.status == 401
    finally:
        stop_server(server)
