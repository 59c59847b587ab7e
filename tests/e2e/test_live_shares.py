"""One account holds only its share of a server's live streams (SSE and WebSocket together):
a customer a few, staff more; a real server process, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
import pytest
import websockets

from storekeeper.accounts.domain import Role
from storekeeper.config import Settings
from tests.conftest import Actor, Actors, LiveServer
from tests.e2e.test_live import _first_ping, _token, _ws_url, sse

pytestmark = [pytest.mark.live, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    """asyncio: the websockets client library runs on it."""
    return "asyncio"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Customers 2 streams, staff 3; quick heartbeats so a stream proves it is registered."""
    return settings.model_copy(
        update={
            "live_poll_s": 0.05,
            "live_heartbeat_s": 0.5,
            "live_max_streams_customer": 2,
            "live_max_streams_staff": 3,
        }
    )


async def _refused_sse(server: LiveServer, who: Actor) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        return await client.get("/api/v1/events", headers=who.headers)


async def test_a_customer_holds_a_few_streams_and_others_still_get_theirs(
    live_server: LiveServer, actors: Actors, manager: Actor
) -> None:
    alice = actors.make(Role.CUSTOMER)
    async with contextlib.AsyncExitStack() as held:
        await held.enter_async_context(sse(live_server, alice))
        ws = await held.enter_async_context(
            websockets.connect(_ws_url(live_server, token=_token(alice)))
        )
        await _first_ping(ws)
        refused = await _refused_sse(live_server, alice)
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "too_many_streams"
        with pytest.raises(websockets.InvalidStatus) as denied:
            async with websockets.connect(_ws_url(live_server, token=_token(alice))):
                pass
        assert denied.value.response.status_code == 403
        # Another customer, and staff with their larger share, are served meanwhile.
        bob = actors.make(Role.CUSTOMER)
        async with (
            sse(live_server, bob),
            sse(live_server, manager),
            sse(live_server, manager),
            sse(live_server, manager),
        ):
            assert (await _refused_sse(live_server, manager)).status_code == 403
    # Closed streams give their share back, once the server noticed (at its next heartbeat).
    deadline = time.monotonic() + 30
    while (await _refused_sse_status(live_server, alice)) != 200:
        assert time.monotonic() < deadline, "closed streams kept the customer's share"
        await asyncio.sleep(0.1)


async def _refused_sse_status(server: LiveServer, who: Actor) -> int:
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=10) as client,
        client.stream("GET", "/api/v1/events", headers=who.headers) as response,
    ):
        return response.status_code
