"""The live hub: one per API process, it tails the outbox and fans events out to its clients.

One read every ``live_poll_s`` (or as soon as this process commits) serves every client of the
process, however many there are: the rows committed since the last read (``outbox.read_feed``
between two snapshots, so a row whose transaction commits late is never skipped), each turned
into a public event once and offered to every client's bounded queue. A client that does not
keep up overflows its queue and is disconnected; it resumes from its last event id. Every API
process runs its own hub on the same outbox, so an event reaches clients on every process, with
no broker in between (docs/live.md)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.engine import Connection

from storekeeper.accounts.domain import Principal, Role
from storekeeper.config import Settings
from storekeeper.db import Database
from storekeeper.errors import NotAuthenticated, PermissionDenied
from storekeeper.events import outbox, restores, retention
from storekeeper.events.outbox import Snapshot
from storekeeper.events.rows import FeedRow
from storekeeper.live import domain, feed, positions
from storekeeper.live.domain import LiveEvent
from storekeeper.live.feed import Delivery
from storekeeper.live.positions import Position
from storekeeper.live.wakeup import RedisWakeup
from storekeeper.observability import metrics

log = logging.getLogger(__name__)
_WAKE_DELAY_S = 0.01
_PAGE = 1000


class Unavailable(Exception):
    """The process takes no more live clients now (at its limit, or shutting down)."""


class Subscription:
    """One connected client: who it is, what it asked for, and its bounded queue of events."""

    def __init__(
        self, principal: Principal, types: frozenset[str], transport: str, queue_size: int
    ) -> None:
        self.principal = principal
        self.types = types
        self.transport = transport
        self.closed: str | None = None
        self._queue: asyncio.Queue[Delivery | None] = asyncio.Queue(queue_size)

    def wants(self, event: LiveEvent) -> bool:
        """Whether this client asked for ``event`` and may see it."""
        return event.type in self.types and domain.may_see(self.principal, event)

    def offer(self, delivery: Delivery) -> None:
        """Queue ``delivery`` if wanted, never waiting: a full queue closes the subscription."""
        if self.closed is not None or not self.wants(delivery.event):
            return
        try:
            self._queue.put_nowait(delivery)
        except asyncio.QueueFull:
            self.close("overflow")

    def close(self, reason: str) -> None:
        """End the subscription; what was queued is dropped (the client resumes from its id)."""
        if self.closed is not None:
            return
        self.closed = reason
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    async def next(self, timeout: float) -> Delivery | None:
        """The next queued event; None after ``timeout`` seconds or once closed."""
        if self.closed is not None:
            return None
        try:
            async with asyncio.timeout(timeout):  # not wait_for: see Hub._run
                return await self._queue.get()
        except TimeoutError:
            return None


@dataclass(frozen=True, slots=True)
class Watcher:
    """Something of this process that follows outbox rows of ``types`` (a cache to invalidate).

    ``on_rows`` gets every such row the hub reads, with the time (``time.monotonic``) the read
    began: every row committed before then has been handed over. ``on_reset`` is called when
    the hub's position moved without reading the rows in between (it could not read at start).
    Both run on the event loop and must not block.
    """

    types: tuple[str, ...]
    on_rows: Callable[[list[FeedRow], float], None]
    on_reset: Callable[[], None]


class Hub:
    """Tails the outbox for this process and feeds its live subscriptions."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._settings = settings
        self._clients: set[Subscription] = set()
        self._position: Snapshot | None = None
        # The restore generation positions are issued in (read with the first position: a
        # restore happens with the server stopped, so it cannot change while this runs).
        self._generation = restores.NEVER_RESTORED
        self._wake = asyncio.Event()
        self._ticked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._committed = False  # this process committed since the last read
        self._watchers: list[Watcher] = []
        self._wakeup = (
            RedisWakeup(settings.redis_url, f"{settings.broker_prefix}:live:wake", self.wake)
            if settings.redis_url
            else None
        )

    async def start(self) -> None:
        """Begin tailing from now (from when the database answers, if it does not yet)."""
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        if not event.contains(self._db.engine, "commit", self._on_commit):
            event.listen(self._db.engine, "commit", self._on_commit)
        if self._wakeup is not None:
            self._wakeup.start()
        with contextlib.suppress(Exception):  # logged and retried by the loop
            await self._read_start()
        self._task = asyncio.create_task(self._run(), name="storekeeper-live-hub")

    async def stop(self) -> None:
        """Close every stream and stop tailing."""
        self._shut_down()
        if event.contains(self._db.engine, "commit", self._on_commit):
            event.remove(self._db.engine, "commit", self._on_commit)
        if self._task is not None:
            self._wake.set()  # the loop sees _stopping and returns
            done, _ = await asyncio.wait({self._task}, timeout=5)
            if not done:  # stuck in a database read: cancel it
                self._task.cancel()
                await asyncio.wait({self._task}, timeout=5)
        if self._wakeup is not None:
            await self._wakeup.stop()

    def watch(self, watcher: Watcher) -> None:
        """Hand ``watcher`` the rows of its types from every read of the outbox on."""
        self._watchers.append(watcher)

    def wake(self) -> None:
        """Read the outbox now rather than at the next poll (a hint that something committed)."""
        self._wake.set()

    def _on_commit(self, _: Connection) -> None:
        # A transaction of this process is committing (on any thread): read soon rather than at
        # the next poll, so clients of the process that wrote see it within milliseconds.
        # Writes of other processes are still found by the poll.
        self._committed = True
        if self._loop is not None and not self._wake.is_set():
            with contextlib.suppress(RuntimeError):  # the loop has closed
                self._loop.call_soon_threadsafe(self._wake.set)

    @property
    def client_count(self) -> int:
        """Connected clients of this process."""
        return len(self._clients)

    async def subscribe(
        self, principal: Principal, types: frozenset[str], *, transport: str, resume: str | None
    ) -> tuple[Subscription, list[Delivery]]:
        """Register a client; also returns what it missed since ``resume`` (or a ``reset``)."""
        if self._loop is not asyncio.get_running_loop():
            # Not started, or called from another event loop than the hub's (an in-process
            # test client without the app's lifespan): no live events here.
            raise Unavailable("live updates are not running on this server")
        start = None if resume is None else positions.decode(resume, dialect=self._db.dialect)
        reset = None if resume is None or start is not None else "unknown position"
        if resume is not None and positions.generation_of(resume) != self._generation:
            start, reset = None, "the server was restored from a backup"
        if start is not None and not await self._reached(start.until):
            start, reset = None, "position ahead of the server"
        upto = self._position
        if self._stopping or upto is None:
            raise Unavailable("the server is shutting down")
        if len(self._clients) >= self._settings.live_max_clients:
            raise Unavailable("too many live clients on this server; try again later")
        self._ensure_account_share(principal)
        sub = Subscription(principal, types, transport, self._settings.live_queue_size)
        # No await between registering and reading the hub's position: the replay up to
        # ``upto`` and the live events after it meet with no gap and no overlap.
        self._clients.add(sub)
        metrics.LIVE_CLIENTS.labels(transport).inc()
        try:
            backlog: list[Delivery] | None = []
            if start is not None:
                backlog, pruned = await self._db.read(
                    functools.partial(
                        _replay,
                        start=start,
                        upto=upto,
                        cap=self._settings.live_replay_limit,
                        generation=self._generation,
                    )
                )
                if pruned:
                    reset = "position older than the retention horizon"
                elif backlog is None:
                    reset = "too far behind"
            if backlog is None or reset is not None:
                event = LiveEvent(domain.RESET, 0, {"reason": reset})
                here = positions.encode(
                    Position.at(upto), dialect=self._db.dialect, generation=self._generation
                )
                backlog = [Delivery(event, here)]
        except BaseException:
            self.unsubscribe(sub)
            raise
        return sub, [d for d in backlog if d.event.type == domain.RESET or sub.wants(d.event)]

    def _ensure_account_share(self, principal: Principal) -> None:
        """One account holds only its share of the streams (a customer a few, staff more)."""
        share = (
            self._settings.live_max_streams_customer
            if principal.role is Role.CUSTOMER
            else self._settings.live_max_streams_staff
        )
        held = sum(1 for sub in self._clients if sub.principal.user_id == principal.user_id)
        if held >= share:
            raise PermissionDenied(
                f"this account already has {held} live streams open; close one first",
                code="too_many_streams",
            )

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a client that went away (idempotent)."""
        sub.close("gone")
        if sub in self._clients:
            self._clients.discard(sub)
            metrics.LIVE_CLIENTS.labels(sub.transport).dec()

    async def stream(
        self,
        sub: Subscription,
        backlog: list[Delivery],
        recheck: Callable[[], Awaitable[Principal]],
    ) -> AsyncIterator[Delivery | None]:
        """The backlog, then live events, and None whenever a heartbeat is due.

        Ends when the subscription closes (``sub.closed`` says why); ``recheck`` is called every
        ``live_recheck_s`` and cuts the stream when the caller's session has ended.
        """
        loop = asyncio.get_running_loop()
        for missed in backlog:
            yield missed
        beat_every, check_every = self._settings.live_heartbeat_s, self._settings.live_recheck_s
        next_beat, next_check = loop.time() + beat_every, loop.time() + check_every
        while sub.closed is None:
            if loop.time() >= next_check:
                next_check = loop.time() + check_every
                try:
                    sub.principal = await recheck()
                except (NotAuthenticated, PermissionDenied):
                    sub.close("revoked")
                    break
                except Exception:  # the database is down: keep the stream, try again later
                    log.warning("live: re-checking a session failed", exc_info=True)
            if loop.time() >= next_beat:
                next_beat = loop.time() + beat_every
                yield None
            live = await sub.next(max(0.0, min(next_beat, next_check) - loop.time()))
            if live is not None:
                yield live

    async def _reached(self, until: Snapshot) -> bool:
        """Wait (briefly) until this hub has read past ``until``, a snapshot of another process."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(1.0, 5 * self._settings.live_poll_s)
        while self._position is None or not positions.covers(self._position, until):
            ticked = self._ticked
            self.wake()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await ticked.wait()
        return True

    async def _run(self) -> None:
        while not self._stopping:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
            # that arrives as the wait ends, and the hub would never stop (a hung shutdown).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.live_poll_s):
                    await self._wake.wait()
            if self._stopping:
                return
            if self._wake.is_set():
                # Woken by a commit: let it finish (the hook runs just before COMMIT) and let a
                # burst of commits gather, so a busy process reads at most every _WAKE_DELAY_S.
                await asyncio.sleep(_WAKE_DELAY_S)
            self._wake.clear()
            if self._committed and self._wakeup is not None:
                self._wakeup.notify()  # the other processes' hubs read now too
            self._committed = False
            if _server_exiting():
                self._shut_down()
                return
            try:
                await self._tick()
            except Exception:  # the database may come back: keep the hub alive
                log.exception("live: reading the outbox failed; retrying")
                await asyncio.sleep(min(5.0, 10 * self._settings.live_poll_s))

    async def _read_start(self) -> None:
        def read(connection: Connection) -> tuple[Snapshot, str]:
            return outbox.snapshot(connection), restores.generation(connection)

        self._position, self._generation = await self._db.read(read)

    async def _tick(self) -> None:
        since = self._position
        began = time.monotonic()
        if since is None:  # the database did not answer at start-up
            await self._read_start()
            for watcher in self._watchers:
                watcher.on_reset()
            return
        watched = tuple(t for watcher in self._watchers for t in watcher.types)
        feeding = bool(self._clients)
        types = (*(domain.SOURCE_TYPES if feeding else ()), *watched)
        if not types:  # nobody to feed: just move on to now
            until, rows = await self._db.read(outbox.snapshot), list[FeedRow]()
        else:
            until, rows = await self._db.read(lambda c: feed.batch(c, since, types))
        if not feeding and self._clients:  # one joined at ``since`` meanwhile: its rows were
            return  # not read; they come next tick, with the watchers' again
        deliveries = feed.deliveries(rows, since, until, self._db.dialect, self._generation)
        for watcher in self._watchers:
            watcher.on_rows([row for row in rows if row.type in watcher.types], began)
        # Offering and moving the position happen with no await in between (see subscribe).
        for delivery in deliveries:
            for sub in list(self._clients):
                sub.offer(delivery)
        self._position = until
        ticked, self._ticked = self._ticked, asyncio.Event()
        ticked.set()

    def _shut_down(self) -> None:
        self._stopping = True
        for sub in list(self._clients):
            sub.close("shutdown")


def _replay(
    connection: Connection, *, start: Position, upto: Snapshot, cap: int, generation: str
) -> tuple[list[Delivery] | None, bool]:
    """What a client resuming at ``start`` missed, and whether pruning may have taken some of
    it: asked after the read, so that a pass pruning meanwhile cannot leave a silent hole."""
    backlog = feed.replay(connection, start, upto, cap, generation)
    return backlog, retention.pruned_past(connection, start.since)


def _server_exiting() -> bool:
    """Whether the uvicorn server running this app has been told to stop.

    Uvicorn waits for open responses to finish *before* it runs the app's lifespan shutdown, so
    endless event streams would keep a stopping server alive forever. Its signal handler is a
    bound method of its ``Server``, whose ``should_exit`` flag is the one sign of a shutdown an
    app can see; it is only read here, never patched.
    """
    for sig in (signal.SIGTERM, signal.SIGINT):
        server = getattr(signal.getsignal(sig), "__self__", None)
        if getattr(server, "should_exit", False) is True:
            return True
    return False
