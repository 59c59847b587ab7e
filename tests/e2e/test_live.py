"""Live updates end to end: real uvicorn processes, SSE over httpx, WebSocket over websockets.

Each test subscribes, causes changes through the public API, and checks what arrives. "Does not
arrive" is checked against a later event the client may see: the hub sends in commit order, so
an event that was wrongly let through would have come first. A new subscriber gets everything
committed after it subscribed, and may also get what committed within the last poll before (the
shop's set-up movements): the tests look for their own events rather than the first one.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from storekeeper.accounts.domain import Role
from storekeeper.config import Settings
from tests.conftest import Actor, Actors, LiveServer, start_server, stop_server
from tests.shop import BREMEN, add_product, add_warehouses

pytestmark = [pytest.mark.live, pytest.mark.anyio]
Event = dict[str, Any]
WAIT_S = 10.0


@pytest.fixture
def anyio_backend() -> str:
    """asyncio: the websockets client library runs on it."""
    return "asyncio"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Fast polls, heartbeats and session re-checks, so every test takes about a second."""
    return settings.model_copy(
        update={
            "live_poll_s": 0.05,
            "live_heartbeat_s": 0.5,
            "live_recheck_s": 0.3,
            "alert_grace_s": 60,
        }
    )


@pytest.fixture
def api(live_server: LiveServer) -> Iterator[httpx.Client]:
    """A plain client of the live server, for the changes the tests cause."""
    with httpx.Client(base_url=live_server.url, timeout=10) as client:
        yield client


@pytest.fixture
def shop(api: httpx.Client, manager: Actor) -> None:
    """Warehouses BER, HAM, MUC and the product MILK, stocked everywhere."""
    add_warehouses(api, manager.headers)  # type: ignore[arg-type]
    add_product(api, manager.headers, "MILK", stock={"BER": 10, "HAM": 10, "MUC": 10})  # type: ignore[arg-type]


def _move(api: httpx.Client, who: Actor, warehouse: str, delta: int, sku: str = "MILK") -> None:
    body = {"sku": sku, "warehouse": warehouse, "delta": delta, "reason": "receipt"}
    r = api.post("/api/v1/stock/movements", headers=who.headers, json=body)
    assert r.status_code == 201, r.text


def _order(api: httpx.Client, who: Actor, qty: int = 1) -> str:
    body = {"lines": [{"sku": "MILK", "qty": qty}], "ship_to": BREMEN}
    headers = {**who.headers, "Idempotency-Key": uuid.uuid4().hex}
    r = api.post("/api/v1/orders", headers=headers, json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


class Sse:
    """An SSE client reading in a task; complete events land in a queue."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.events: asyncio.Queue[Event | None] = asyncio.Queue()
        self.comments: list[str] = []

    async def read(self) -> None:
        """Parse the stream (id, event, data fields; comments kept) until it ends."""
        fields: dict[str, str] = {}
        try:
            async for line in self.response.aiter_lines():
                if not line:
                    if "data" in fields:
                        await self.events.put(
                            {"id": fields.get("id"), "event": fields.get("event")}
                            | json.loads(fields["data"])
                        )
                    fields = {}
                elif line.startswith(":"):
                    self.comments.append(line)
                else:
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
        except httpx.HTTPError:
            pass
        await self.events.put(None)

    async def next(self) -> Event | None:
        """The next event; None once the stream has ended."""
        return await asyncio.wait_for(self.events.get(), WAIT_S)

    async def until(self, done: Callable[[Event], bool]) -> list[Event]:
        """Every event up to and including the first for which ``done`` holds."""
        seen: list[Event] = []
        while True:
            event = await self.next()
            assert event is not None, f"stream ended before the expected event; got {seen}"
            seen.append(event)
            if done(event):
                return seen


@asynccontextmanager
async def sse(
    server: LiveServer, who: Actor | None, *, last_id: str | None = None, types: str | None = None
) -> AsyncIterator[Sse]:
    """Subscribe to ``GET /events``; the subscription is registered once this yields."""
    headers = dict(who.headers) if who else {}
    if last_id is not None:
        headers["Last-Event-ID"] = last_id
    params = {"types": types} if types else {}
    timeout = httpx.Timeout(10, read=WAIT_S)
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=timeout) as client,
        client.stream("GET", "/api/v1/events", headers=headers, params=params) as response,
    ):
        assert response.status_code == 200, (await response.aread()).decode()
        stream = Sse(response)
        reader = asyncio.create_task(stream.read())
        try:
            yield stream
        finally:
            reader.cancel()


def _stock(warehouse: str, on_hand: int | None = None) -> Callable[[Event], bool]:
    def match(event: Event) -> bool:
        data = event["data"]
        return (
            event["type"] == "stock.changed"
            and data["warehouse"] == warehouse
            and (on_hand is None or data["on_hand"] == on_hand)
        )

    return match


# --- SSE ---------------------------------------------------------------------------------------


async def test_a_manager_receives_stock_changes_after_a_movement(
    live_server: LiveServer, api: httpx.Client, shop: None, manager: Actor
) -> None:
    async with sse(live_server, manager) as stream:
        _move(api, manager, "BER", 5)
        event = (await stream.until(_stock("BER", 15)))[-1]
    assert event["event"] == "stock.changed"
    assert event["data"] == {
        "sku": "MILK",
        "warehouse": "BER",
        "on_hand": 15,
        "reserved": 0,
        "available": 15,
        "reason": "receipt",
        "ref": None,
    }
    assert event["id"] and event["position"] > 0 and event["occurred_at"]


async def test_a_clerk_receives_their_warehouse_and_not_another(
    live_server: LiveServer, api: httpx.Client, shop: None, manager: Actor, actors: Actors
) -> None:
    clerk = actors.make(Role.CLERK, warehouses=["BER"])
    async with sse(live_server, clerk) as stream:
        _move(api, manager, "HAM", 3)
        _move(api, manager, "BER", 4)
        seen = await stream.until(_stock("BER", 14))
    assert {e["data"]["warehouse"] for e in seen if e["type"] == "stock.changed"} == {"BER"}


async def test_a_customer_receives_their_orders_status_and_nothing_else(
    live_server: LiveServer, api: httpx.Client, shop: None, manager: Actor, actors: Actors
) -> None:
    alice, bob = actors.make(Role.CUSTOMER), actors.make(Role.CUSTOMER)
    async with sse(live_server, alice) as stream:
        bobs = _order(api, bob)
        alices = _order(api, alice)
        seen = await stream.until(
            lambda e: e["data"].get("order_id") == alices and e["data"]["status"] == "confirmed"
        )
    assert {e["type"] for e in seen} == {"order.status_changed"}  # no stock, though it moved
    assert {e["data"]["order_id"] for e in seen} == {alices}
    assert bobs != alices
    assert [e["data"]["event"] for e in seen] == ["order.placed", "order.confirmed"]


async def test_alerts_reach_who_may_see_their_warehouse(
    live_server: LiveServer, api: httpx.Client, shop: None, manager: Actor, actors: Actors
) -> None:
    clerk_ber = actors.make(Role.CLERK, warehouses=["BER"])
    clerk_ham = actors.make(Role.CLERK, warehouses=["HAM"])
    device = actors.make(Role.DEVICE, warehouses=["BER"])
    sensor = {
        "id": "ber-1",
        "warehouse": "BER",
        "room": "chiller",
        "min_temp_c": 2,
        "max_temp_c": 8,
    }
    assert api.post("/api/v1/sensors", headers=manager.headers, json=sensor).status_code == 201
    t0 = datetime.now(UTC) - timedelta(hours=1)
    readings = [(0, 5.0), (30, 9.0), (95, 9.5), (120, 4.0)]  # out for 65 s > grace, then back
    body = {
        "readings": [
            {"sensor": "ber-1", "ts": (t0 + timedelta(seconds=at)).isoformat(), "temp_c": temp}
            for at, temp in readings
        ]
    }
    async with (
        sse(live_server, clerk_ber, types="alert.raised,alert.cleared") as ber,
        sse(live_server, device, types="alert.raised,alert.cleared") as dev,
        sse(live_server, clerk_ham) as ham,
    ):
        r = api.post("/api/v1/telemetry", headers=device.headers, json=body)
        assert r.status_code == 200, r.text
        raised, cleared = await ber.until(lambda e: e["type"] == "alert.cleared")
        on_device = await dev.until(lambda e: e["type"] == "alert.cleared")
        _move(api, manager, "HAM", 1)  # after the alerts: HAM's clerk must see only this
        on_ham = await ham.until(_stock("HAM", 11))
    assert raised["type"] == "alert.raised" and raised["data"]["sensor"] == "ber-1"
    assert raised["data"]["warehouse"] == "BER" and raised["data"]["temp_c"] == 9.5
    assert cleared["data"]["alert_id"] == raised["data"]["alert_id"]
    assert [e["type"] for e in on_device] == ["alert.raised", "alert.cleared"]
    assert {e["type"] for e in on_ham} == {"stock.changed"}


async def test_the_types_filter_leaves_out_other_types(
    live_server: LiveServer, api: httpx.Client, shop: None, manager: Actor
) -> None:
    async with sse(live_server, manager, types="order.status_changed") as stream:
        _move(api, manager, "BER", 1)
        order = _order(api, manager)
        seen = await stream.until(lambda e: e["data"].get("status") == "confirmed")
    assert {e["type"] for e in seen} == {"order.status_changed"}
    assert {e["data"]["order_id"] for e in seen} == {order}


async def test_reconnecting_with_last_event_id_resumes_with_no_gap_and_no_duplicate(
    live_server: LiveServer, api: httpx.Client, shop: None, manager: Actor
) -> None:
    async with sse(live_server, manager, types="stock.changed") as stream:
        _move(api, manager, "BER", 1)
        first = (await stream.until(_stock("BER", 11)))[-1]
    for delta in range(1, 6):  # while nobody listens
        _move(api, manager, "MUC", delta)
    async with sse(live_server, manager, last_id=first["id"], types="stock.changed") as stream:
        _move(api, manager, "HAM", 1)  # and one after reconnecting
        seen = await stream.until(_stock("HAM", 11))
    assert [(e["data"]["warehouse"], e["data"]["on_hand"]) for e in seen] == [
        ("MUC", 11),
        ("MUC", 13),
        ("MUC", 16),
        ("MUC", 20),
        ("MUC", 25),
        ("HAM", 11),
    ]
    positions = [first["position"]] + [e["position"] for e in seen]
    assert positions == sorted(set(positions))


async def test_an_unknown_last_event_id_gets_a_reset_then_live_events(
    live_server: LiveServer, api: httpx.Client, shop: None, manager: Actor
) -> None:
    async with sse(live_server, manager, last_id="not-a-position") as stream:
        reset = await stream.next()
        _move(api, manager, "BER", 1)
        seen = await stream.until(_stock("BER", 11))
    assert reset is not None and reset["type"] == "reset" and reset["id"]
    assert {e["type"] for e in seen} == {"stock.changed"}


async def test_heartbeats_keep_an_idle_stream_open(live_server: LiveServer, manager: Actor) -> None:
    async with sse(live_server, manager) as stream:
        await asyncio.sleep(1.2)  # heartbeat every 0.5 s in these tests
    assert stream.comments.count(": ping") >= 1


async def test_bad_requests_get_json_errors_not_a_stream(
    live_server: LiveServer, manager: Actor
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        bare = await client.get("/api/v1/events")
        forged = await client.get("/api/v1/events", headers={"Authorization": "Bearer x.y.z"})
        bad_type = await client.get(
            "/api/v1/events", headers=manager.headers, params={"types": "order.placed"}
        )
    assert bare.status_code == 401 and bare.json()["code"] == "not_authenticated"
    assert forged.status_code == 401 and forged.json()["code"] == "invalid_token"
    assert bad_type.status_code == 422 and bad_type.json()["code"] == "unknown_event_type"


async def test_a_revoked_session_is_cut(
    live_server: LiveServer, api: httpx.Client, customer: Actor
) -> None:
    async with sse(live_server, customer) as stream:
        r = api.post("/api/v1/auth/logout", headers=customer.headers)
        assert r.status_code == 204
        assert await stream.next() is None  # the stream ends within a re-check period
    assert ": closed revoked" in stream.comments


# --- WebSocket ---------------------------------------------------------------------------------


def _ws_url(server: LiveServer, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return server.url.replace("http://", "ws://") + "/api/v1/live" + (f"?{query}" if query else "")


def _token(who: Actor) -> str:
    return who.headers["Authorization"].removeprefix("Bearer ")


async def _ws_until(ws: ClientConnection, done: Callable[[Event], bool]) -> list[Event]:
    seen = []
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
        if message["type"] == "ping":
            continue
        seen.append(message)
        if done(message):
            return seen


async def _first_ping(ws: ClientConnection) -> list[Event]:
    """Wait for the first heartbeat (proof the subscription is registered); the events before."""
    before = []
    while (message := json.loads(await asyncio.wait_for(ws.recv(), WAIT_S)))["type"] != "ping":
        before.append(message)
    return before


async def test_websocket_with_a_query_token_streams_and_resumes(
    live_server: LiveServer, api: httpx.Client, shop: None, manager: Actor, actors: Actors
) -> None:
    clerk = actors.make(Role.CLERK, warehouses=["BER"])
    url = _ws_url(live_server, token=_token(clerk), types="stock.changed")
    async with websockets.connect(url) as ws:
        await _first_ping(ws)
        _move(api, manager, "HAM", 1)
        _move(api, manager, "BER", 1)
        seen = await _ws_until(ws, _stock("BER", 11))
    assert {e["data"]["warehouse"] for e in seen} == {"BER"}
    for delta in (2, 3):
        _move(api, manager, "BER", delta)
    _move(api, manager, "HAM", 1)
    url = _ws_url(live_server, token=_token(clerk), last_event_id=seen[-1]["id"])
    async with websockets.connect(url) as ws:
        resumed = await _first_ping(ws)
        _move(api, manager, "BER", 4)
        resumed += await _ws_until(ws, _stock("BER", 20))
    assert [e["data"]["on_hand"] for e in resumed] == [13, 16, 20]


async def test_websocket_accepts_the_token_as_first_message(
    live_server: LiveServer, api: httpx.Client, shop: None, manager: Actor
) -> None:
    async with websockets.connect(_ws_url(live_server)) as ws:
        await ws.send(json.dumps({"token": _token(manager)}))
        await _first_ping(ws)
        _move(api, manager, "MUC", 2)
        event = (await _ws_until(ws, _stock("MUC", 12)))[-1]
    assert event["data"]["on_hand"] == 12 and event["id"]


async def test_websocket_refuses_a_bad_token(live_server: LiveServer) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(_ws_url(live_server, token="nope")):
            pass
    assert refused.value.response.status_code == 401
    async with websockets.connect(_ws_url(live_server)) as ws:
        await ws.send(json.dumps({"token": "nope"}))
        error = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), WAIT_S)
    assert error["type"] == "error" and error["code"] == "invalid_token"
    assert ws.close_code == 4401


async def test_websocket_of_a_revoked_session_is_closed(
    live_server: LiveServer, api: httpx.Client, customer: Actor
) -> None:
    async with websockets.connect(_ws_url(live_server, token=_token(customer))) as ws:
        await _first_ping(ws)
        assert api.post("/api/v1/auth/logout", headers=customer.headers).status_code == 204
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), WAIT_S)
    assert ws.close_code == 4401


# --- several processes --------------------------------------------------------------------------


@pytest.fixture
def second_server(settings: Settings, tmp_path: Path) -> Iterator[LiveServer]:
    """Another API process on the same database."""
    server = start_server(settings, tmp_path / "second.log")
    yield server
    stop_server(server)


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_an_event_caused_through_one_process_reaches_clients_of_another(
    live_server: LiveServer,
    second_server: LiveServer,
    api: httpx.Client,
    shop: None,
    manager: Actor,
) -> None:
    async with sse(second_server, manager) as stream:
        _move(api, manager, "BER", 7)  # through the first process
        event = (await stream.until(_stock("BER", 17)))[-1]
        assert event["data"]["on_hand"] == 17
    # An id issued by one process resumes on the other.
    _move(api, manager, "HAM", 1)
    async with sse(live_server, manager, last_id=event["id"]) as stream:
        resumed = (await stream.until(_stock("HAM", 11)))[-1]
    assert resumed["data"]["on_hand"] == 11


async def test_stopping_the_server_ends_open_streams(
    settings: Settings, tmp_path: Path, manager: Actor
) -> None:
    server = start_server(settings, tmp_path / "stopping.log")
    try:
        async with sse(server, manager) as stream:
            server.process.terminate()
            assert await stream.next() is None
        # Within seconds (uvicorn re-raises SIGTERM once it has shut down gracefully).
        assert await asyncio.to_thread(server.process.wait, 10) in (0, -15)
        assert "Application shutdown complete" in (tmp_path / "stopping.log").read_text()
    finally:
        stop_server(server)


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_beyond_the_client_limit_a_stream_ends_at_once_and_asks_for_a_retry(
    settings: Settings, tmp_path: Path, manager: Actor
) -> None:
    limited = settings.model_copy(update={"live_max_clients": 1})
    server = start_server(limited, tmp_path / "limited.log")
    try:
        async with (
            sse(server, manager),
            httpx.AsyncClient(base_url=server.url, timeout=WAIT_S) as client,
        ):
            refused = await client.get("/api/v1/events", headers=manager.headers)
            metrics = (await client.get("/metrics")).text
    finally:
        stop_server(server)
    # 200, not 503: EventSource gives up for good on a 503 but retries a stream that ends.
    assert refused.status_code == 200
    assert refused.text.startswith("retry: 5000\n\n: closed unavailable")
    assert 'storekeeper_live_clients{transport="sse"} 1.0' in metrics
