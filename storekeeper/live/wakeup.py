"""An optional Redis pub/sub nudge between the hubs of several API processes.

Without it a hub finds another process's writes at its next poll (``live_poll_s``). With
``STOREKEEPER_REDIS_URL`` set, a hub whose process committed publishes a one-word message, and
every other hub reads the outbox at once. The message carries no event: the outbox stays the
only source, so a lost message, or Redis being down, costs latency and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class RedisWakeup:
    """Publishes "this process committed" and wakes the local hub on the others' messages."""

    def __init__(
        self,
        url: str,
        channel: str,
        on_wake: Callable[[], None],
        *,
        reconnect_s: float = 1.0,
        max_reconnect_s: float = 60.0,
    ) -> None:
        # No socket timeout: the subscription idles for as long as nobody writes.
        self._redis: Redis = Redis.from_url(url, socket_connect_timeout=2)
        self._channel = channel
        self._on_wake = on_wake
        self._me = uuid.uuid4().hex.encode()  # our own messages come back too: skip them
        self._listener: asyncio.Task[None] | None = None
        self._publishing: asyncio.Task[None] | None = None
        self._reconnect_s = reconnect_s
        self._max_reconnect_s = max_reconnect_s
        self.failures = 0
        """Failed connection attempts in the current outage (0 while connected)."""

    def start(self) -> None:
        """Listen in the background (reconnecting after failures)."""
        self._listener = asyncio.create_task(self._listen(), name="storekeeper-live-wakeup")

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        for task in (self._listener, self._publishing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._redis.aclose()

    def notify(self) -> None:
        """Tell the other processes to read the outbox; at most one message in flight."""
        if self._publishing is None or self._publishing.done():
            self._publishing = asyncio.create_task(self._publish())

    async def _publish(self) -> None:
        try:
            await asyncio.wait_for(self._redis.publish(self._channel, self._me), 2)
        except (RedisError, OSError, TimeoutError) as exc:
            log.debug("live: wake-up publish failed: %s", exc)

    async def _listen(self) -> None:
        # An outage is logged once when it starts and once when it ends, not on every retry;
        # retries back off (doubling up to ``max_reconnect_s``) so a dead Redis costs nothing.
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    if self.failures:
                        log.info("live: Redis wake-up back after %d failed tries", self.failures)
                    self.failures = 0
                    async for message in pubsub.listen():
                        if message["type"] == "message" and message["data"] != self._me:
                            self._on_wake()
            except (RedisError, OSError) as exc:
                if not self.failures:
                    log.warning("live: Redis wake-up unavailable (%s); polling only", exc)
                self.failures += 1
            delay = min(self._max_reconnect_s, self._reconnect_s * 2 ** max(0, self.failures - 1))
            await asyncio.sleep(delay)
