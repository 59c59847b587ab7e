"""The live hub against a real database: commit order, resume, slow clients, limits, shutdown.

The hub runs in the test's event loop; events are written with ``outbox.record`` as the contexts
write them, in real transactions.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import ExitStack

import pytest
from sqlalchemy import text

from storekeeper.accounts.domain import Principal, Role
from storekeeper.bootstrap import Container
from storekeeper.events import outbox
from storekeeper.inventory.events import StockChanged
from storekeeper.live import domain
from storekeeper.live.feed import Delivery
from storekeeper.live.hub import Hub, Subscription, Unavailable

pytestmark = pytest.mark.anyio
MANAGER = Principal(user_id=uuid.uuid4(), role=Role.MANAGER)
ALL = frozenset(domain.PUBLIC_TYPES)
WAIT_S = 10.0


@pytest.fixture
def anyio_backend() -> str:
    """The hub is asyncio code."""
    return "asyncio"


def _stock(sku: str, on_hand: int, warehouse: str = "BER") -> StockChanged:
    return StockChanged(
        sku=sku, warehouse=warehouse, on_hand=on_hand, reserved=0, reason="receipt", ref=None
    )


def _write(container: Container, *events: StockChanged) -> None:
    with container.db.transaction() as session:
        outbox.record(session, *events)


@pytest.fixture
async def hub(container: Container) -> AsyncIterator[Hub]:
    """A started hub polling every 20 ms, with small limits to hit."""
    settings = container.settings.model_copy(
        update={
            "live_poll_s": 0.02,
            "live_max_clients": 3,
            "live_replay_limit": 5,
            "live_queue_size": 4,
        }
    )
    started = Hub(container.db, settings)
    await started.start()
    yield started
    await started.stop()


async def _take(sub: Subscription, count: int) -> list[Delivery]:
    taken = []
    while len(taken) < count:
        delivery = await sub.next(WAIT_S)
        assert delivery is not None, f"closed ({sub.closed}) after {taken}"
        taken.append(delivery)
    return taken


def _skus(deliveries: list[Delivery]) -> list[str]:
    return [d.event.data["sku"] for d in deliveries]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_an_event_whose_transaction_commits_late_is_still_sent_and_resumed(
    container: Container, hub: Hub
) -> None:
    sub, _ = await hub.subscribe(MANAGER, ALL, transport="sse", resume=None)
    db = container.db
    with ExitStack() as stack:
        slow = stack.enter_context(db.transaction())
        fast_block = db.transaction()
        fast = fast_block.__enter__()
        slow.execute(text("SELECT pg_current_xact_id()"))  # slow holds the older transaction
        outbox.record(slow, _stock("EARLY", 1))  # the lower outbox id ...
        outbox.record(fast, _stock("LATE", 2))
        fast_block.__exit__(None, None, None)  # ... commits after the higher one
        [late] = await _take(sub, 1)
        assert _skus([late]) == ["LATE"]
    [early] = await _take(sub, 1)  # committed now
    assert _skus([early]) == ["EARLY"] and early.event.position < late.event.position

    # A client that left right after LATE gets EARLY on resuming, and nothing twice.
    resumed, backlog = await hub.subscribe(MANAGER, ALL, transport="ws", resume=late.id)
    assert _skus(backlog) == ["EARLY"]
    again, none = await hub.subscribe(MANAGER, ALL, transport="ws", resume=early.id)
    assert none == []
    for done in (sub, resumed, again):
        hub.unsubscribe(done)


async def test_resuming_gets_exactly_what_was_missed(container: Container, hub: Hub) -> None:
    sub, _ = await hub.subscribe(MANAGER, ALL, transport="sse", resume=None)
    _write(container, _stock("A", 1))
    [first] = await _take(sub, 1)
    hub.unsubscribe(sub)
    _write(container, _stock("B", 1), _stock("C", 1))
    _write(container, _stock("D", 1))
    await asyncio.sleep(0.1)  # the hub has moved past them with nobody listening
    back, backlog = await hub.subscribe(MANAGER, ALL, transport="sse", resume=first.id)
    _write(container, _stock("E", 1))
    live = await _take(back, 1)
    assert _skus(backlog) + _skus(live) == ["B", "C", "D", "E"]
    hub.unsubscribe(back)


async def test_a_resume_beyond_the_replay_limit_gets_a_reset(
    container: Container, hub: Hub
) -> None:
    sub, _ = await hub.subscribe(MANAGER, ALL, transport="sse", resume=None)
    _write(container, _stock("A", 1))
    [first] = await _take(sub, 1)
    hub.unsubscribe(sub)
    _write(container, *(_stock(f"X{i}", i) for i in range(6)))  # limit is 5
    await asyncio.sleep(0.1)
    back, backlog = await hub.subscribe(MANAGER, ALL, transport="sse", resume=first.id)
    assert [d.event.type for d in backlog] == ["reset"]
    assert backlog[0].event.data == {"reason": "too far behind"}
    # The reset's id is a position too: resuming from it misses nothing later.
    hub.unsubscribe(back)
    _write(container, _stock("Z", 1))
    later, missed = await hub.subscribe(MANAGER, ALL, transport="sse", resume=backlog[0].id)
    assert _skus(missed or await _take(later, 1)) == ["Z"]  # replayed, or live if just written
    hub.unsubscribe(later)


async def test_a_client_that_does_not_read_is_cut_and_others_go_on(
    container: Container, hub: Hub
) -> None:
    reader, _ = await hub.subscribe(MANAGER, ALL, transport="sse", resume=None)
    idle, _ = await hub.subscribe(MANAGER, ALL, transport="sse", resume=None)
    for i in range(6):  # queues hold 4
        _write(container, _stock(f"S{i}", i))
        await _take(reader, 1)
    assert idle.closed == "overflow" and await idle.next(0.1) is None
    assert reader.closed is None  # it kept up, and the idle one never held it back
    for sub in (reader, idle):
        hub.unsubscribe(sub)


async def test_clerks_customers_and_devices_see_only_theirs(container: Container, hub: Hub) -> None:
    clerk = Principal(user_id=uuid.uuid4(), role=Role.CLERK, warehouses=frozenset({"HAM"}))
    device = Principal(user_id=uuid.uuid4(), role=Role.DEVICE, scope="warehouse:MUC")
    customer = Principal(user_id=uuid.uuid4(), role=Role.CUSTOMER)
    subs = [
        (await hub.subscribe(who, ALL, transport="sse", resume=None))[0]
        for who in (clerk, device, customer)
    ]
    _write(container, _stock("A", 1, "BER"), _stock("B", 1, "HAM"), _stock("C", 1, "MUC"))
    [ham] = await _take(subs[0], 1)
    [muc] = await _take(subs[1], 1)
    assert ham.event.data["warehouse"] == "HAM" and muc.event.data["warehouse"] == "MUC"
    assert await subs[2].next(0.2) is None and subs[2].closed is None
    for sub in subs:
        hub.unsubscribe(sub)


async def test_the_client_limit_and_stopping(container: Container, hub: Hub) -> None:
    subs = [(await hub.subscribe(MANAGER, ALL, transport="ws", resume=None))[0] for _ in "abc"]
    with pytest.raises(Unavailable):
        await hub.subscribe(MANAGER, ALL, transport="ws", resume=None)
    await hub.stop()
    assert {sub.closed for sub in subs} == {"shutdown"}
    with pytest.raises(Unavailable):
        await hub.subscribe(MANAGER, ALL, transport="ws", resume=None)
