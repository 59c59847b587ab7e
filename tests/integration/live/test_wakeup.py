"""The Redis wake-up between hubs, against the real Redis: others are woken, never oneself."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from storekeeper.live.wakeup import RedisWakeup

pytestmark = pytest.mark.anyio
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def anyio_backend() -> str:
    """redis.asyncio runs on asyncio."""
    return "asyncio"


async def test_a_commit_nudge_wakes_the_other_processes_hubs_only() -> None:
    channel = f"test-live-wake-{uuid.uuid4().hex}"
    woken = {"a": asyncio.Event(), "b": asyncio.Event(), "c": asyncio.Event()}
    hubs = {name: RedisWakeup(REDIS_URL, channel, event.set) for name, event in woken.items()}
    for hub in hubs.values():
        hub.start()
    try:
        for _ in range(100):  # until the others have subscribed: a nudge before is lost
            hubs["a"].notify()
            await asyncio.sleep(0.05)
            if woken["b"].is_set() and woken["c"].is_set():
                break
        assert woken["b"].is_set() and woken["c"].is_set()
        assert not woken["a"].is_set()  # its own process read already
    finally:
        for hub in hubs.values():
            await hub.stop()


async def test_without_redis_it_only_logs_and_nothing_breaks() -> None:
    woken = asyncio.Event()
    hub = RedisWakeup("redis://127.0.0.1:1/0", "nowhere", woken.set)  # nothing listens there
    hub.start()
    hub.notify()
    await asyncio.sleep(0.3)
    await hub.stop()
    assert not woken.is_set()


async def test_a_dead_redis_is_logged_once_while_retries_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = RedisWakeup(
        "redis://127.0.0.1:1/0", "nowhere", lambda: None, reconnect_s=0.005, max_reconnect_s=0.01
    )
    with caplog.at_level(logging.INFO, logger="storekeeper.live.wakeup"):
        hub.start()
        while hub.failures < 10:
            await asyncio.sleep(0.01)
        await hub.stop()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "unavailable" in warnings[0].getMessage()
