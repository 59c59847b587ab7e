"""The MQTT subscriber: sensor readings from ``<prefix>/sensors/{sensor}/readings`` into ingest.

A payload is a JSON object with the device token and either one reading or a list of them (see
docs/telemetry.md). Delivery is at least once end to end: a message is acknowledged to the
broker only after its readings were stored (or refused for good), in a persistent session with a
fixed client id, so what is published while this process is down or the database is away is
delivered again later. Several processes split the stream through one shared subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import aiomqtt
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError

from storekeeper.accounts.domain import Principal
from storekeeper.errors import DomainError
from storekeeper.telemetry.readings import ReadingIn, Verdict
from storekeeper.telemetry.transports import (
    DeviceAuthenticator,
    Ingest,
    Unparseable,
    count_rejected,
    parse_number,
    parse_timestamp,
)

log = logging.getLogger(__name__)

MAX_READINGS_PER_MESSAGE = 1000
# Errors that pass: the database or the network is away. Others are not retried.
_OUTAGES = (OperationalError, InterfaceError, DisconnectionError, SQLAlchemyTimeoutError, OSError)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class MqttOptions:
    """Where and how to subscribe; ``shared_group`` None subscribes without sharing."""

    url: str
    client_id: str
    topic_prefix: str = "storekeeper"
    shared_group: str | None = "storekeeper"
    queue_size: int = 1000
    batch_max: int = 500
    max_payload_bytes: int = 64 * 1024
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    connections: int = 1

    @property
    def topic(self) -> str:
        """The topic filter subscribed to."""
        topic = f"{self.topic_prefix}/sensors/+/readings"
        return f"$share/{self.shared_group}/{topic}" if self.shared_group else topic


def default_client_id(*, prefix: str, hostname: str, deployment: str) -> str:
    """``<prefix>-telemetry-<hostname>-<8 hex of deployment>``: one session per deployment.

    ``deployment`` names what one deployment owns (its data dir and database): two ``make run``
    on one host then keep separate persistent sessions, so what is queued for one (a poison
    message included) is never delivered to the other. Hashed, so no path or password shows.
    """
    digest = hashlib.sha256(deployment.encode()).hexdigest()[:8]
    return f"{prefix}-telemetry-{hostname}-{digest}"


def parse_payload(sensor: str, payload: bytes) -> tuple[str, list[ReadingIn]]:
    """The token and readings of one message; raises :class:`Unparseable`."""
    try:
        data = json.loads(payload)
    except ValueError:  # not JSON, not UTF-8, or an integer of more than 4300 digits
        raise Unparseable("unparseable") from None
    except RecursionError:  # arrays or objects nested thousands of levels deep
        raise Unparseable("too_deep") from None
    if not isinstance(data, dict) or not isinstance(data.get("token"), str):
        raise Unparseable("unparseable")
    items = data.get("readings", [data])
    if not isinstance(items, list) or not 0 < len(items) <= MAX_READINGS_PER_MESSAGE:
        raise Unparseable("unparseable")
    readings = []
    for item in items:
        if not isinstance(item, dict) or "ts" not in item or "temp_c" not in item:
            raise Unparseable("unparseable")
        humidity = item.get("humidity")
        readings.append(
            ReadingIn(
                sensor=sensor,
                ts=parse_timestamp(item["ts"]),
                temp_c=parse_number(item["temp_c"]),
                humidity=None if humidity is None else parse_number(humidity),
            )
        )
    return data["token"], readings


class MqttSubscriber:
    """Receives, batches and stores readings until cancelled, reconnecting with backoff.

    ``options.connections`` connections (client ids ``<client_id>-<n>`` when more than one)
    feed one bounded queue, and one consumer stores what has arrived on all of them in one
    call: the broker allows only a few unacknowledged messages per connection (Mosquitto: 20),
    so more connections mean bigger batches and fewer transactions.
    """

    def __init__(self, options: MqttOptions, *, ingest: Ingest, auth: DeviceAuthenticator) -> None:
        self.options = options
        self.ingest = ingest
        self.auth = auth
        self.subscribed = asyncio.Event()  # set while every connection is subscribed
        self._up = 0
        self._queue: asyncio.Queue[tuple[aiomqtt.Client, aiomqtt.Message]] = asyncio.Queue(
            options.queue_size
        )

    async def run(self) -> None:
        """Stay subscribed for as long as the task lives."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._consume())
            for n in range(self.options.connections):
                client_id = self.options.client_id
                tasks.create_task(
                    self._connection(
                        client_id if self.options.connections == 1 else f"{client_id}-{n}"
                    )
                )

    async def _connection(self, client_id: str) -> None:
        """One connection, opened again with backoff whenever it fails."""
        delay = self.options.reconnect_min_s
        while True:
            subscribed = False
            try:
                async with self._client(client_id) as client:
                    await client.subscribe(self.options.topic, qos=1)
                    subscribed = True
                    self._count_up(+1)
                    log.info("MQTT subscribed to %s as %s", self.options.topic, client_id)
                    # A full queue stops this loop, so paho stops reading and the broker holds
                    # back: it sends no more than its in-flight window before our acks.
                    async for message in client.messages:
                        await self._queue.put((client, message))
            except (aiomqtt.MqttError, OSError) as exc:
                log.warning("MQTT connection %s lost (%s); reconnecting", client_id, exc)
            except Exception:  # a bug must not end ingestion for good
                log.exception("MQTT connection %s failed; reconnecting", client_id)
            finally:
                if subscribed:
                    self._count_up(-1)
            if subscribed:  # it had been up: back off afresh
                delay = self.options.reconnect_min_s
            # Jitter: many processes losing one broker must not all come back in one instant.
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311 - not crypto
            delay = min(delay * 2, self.options.reconnect_max_s)

    def _client(self, client_id: str) -> aiomqtt.Client:
        url = urlsplit(self.options.url)
        client = aiomqtt.Client(
            url.hostname or "127.0.0.1",
            url.port or 1883,
            username=url.username,
            password=url.password,
            identifier=client_id,
            clean_session=False,
            max_queued_incoming_messages=self.options.queue_size,
            timeout=10,
        )
        # Acknowledged by us once stored, not by paho on receipt; aiomqtt has no switch for it.
        client._client.manual_ack_set(True)
        return client

    def _count_up(self, delta: int) -> None:
        self._up += delta
        if self._up == self.options.connections:
            self.subscribed.set()
        else:
            self.subscribed.clear()

    async def _consume(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.options.batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._store([message for _, message in batch])
            # In order of receipt per connection, as MQTT 3.1.1 asks of PUBACKs. A connection
            # lost meanwhile ignores the ack; the broker sends those again (stored once).
            for client, message in batch:
                if message.qos > 0:
                    client._client.ack(message.mid, message.qos)

    async def _store(self, batch: list[aiomqtt.Message]) -> None:
        """Store a batch, grouped by device; refusals are counted and dropped."""
        by_token: dict[str, list[ReadingIn]] = {}
        for message in batch:
            try:
                token, readings = self._parse(message)
            except Unparseable as exc:
                count_rejected("mqtt", exc.reason)
                log.warning("MQTT %s: %s payload dropped", message.topic.value, exc.reason)
                continue
            except Exception:
                # A parser bug: the message is dropped (and acknowledged) all the same, since
                # letting it escape would restart the subscriber and have it delivered again.
                count_rejected("mqtt", "unparseable")
                log.exception("MQTT %s: payload dropped, the parser failed", message.topic.value)
                continue
            by_token.setdefault(token, []).extend(readings)
        for token, readings in by_token.items():
            principal: Principal | None = None
            try:
                principal = await self._retrying(partial(self.auth.principal, token))
                verdicts = await self._retrying(
                    partial(asyncio.to_thread, self.ingest, principal, readings, transport="mqtt")
                )
            except DomainError as exc:
                count_rejected("mqtt", exc.code, len(readings))
                log.warning("MQTT: %d readings refused (%s)", len(readings), exc.code)
                continue
            except Exception:  # not an outage: something in these readings trips a bug
                if principal is None:  # checking the token did: drop what it sent
                    log.exception("MQTT: checking a token failed; %d dropped", len(readings))
                    count_rejected("mqtt", "internal_error", len(readings))
                    continue
                log.exception("MQTT: storing %d readings failed; one by one", len(readings))
                verdicts = await self._one_by_one(principal, readings)
            _log_refusals(verdicts)

    async def _one_by_one(self, principal: Principal, readings: list[ReadingIn]) -> list[Verdict]:
        """Store each reading alone; one that still fails is dropped, so it cannot wedge us."""
        verdicts = []
        for reading in readings:
            try:
                verdicts += await self._retrying(
                    partial(asyncio.to_thread, self.ingest, principal, [reading], transport="mqtt")
                )
            except Exception as exc:
                reason = exc.code if isinstance(exc, DomainError) else "internal_error"
                count_rejected("mqtt", reason)
                verdicts.append(Verdict(stored=False, reason=reason))
        return verdicts

    async def _retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """``attempt()`` until it succeeds or fails for another reason than an outage: a
        database outage is waited out with the messages unacknowledged, so the broker holds
        the rest back meanwhile; any other error is raised (retrying would loop for ever)."""
        delay = self.options.reconnect_min_s
        while True:
            try:
                return await attempt()
            except _OUTAGES:  # the database is away: log, wait, try again
                log.exception("MQTT: storing readings failed; retrying in %.1f s", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.options.reconnect_max_s)

    def _parse(self, message: aiomqtt.Message) -> tuple[str, list[ReadingIn]]:
        levels = message.topic.value.split("/")
        payload = message.payload
        if (
            not isinstance(payload, bytes | bytearray)
            or len(payload) > self.options.max_payload_bytes
        ):
            raise Unparseable("payload_too_large" if payload else "unparseable")
        return parse_payload(levels[-2], bytes(payload))


def _log_refusals(verdicts: list[Verdict]) -> None:
    refused = [verdict.reason for verdict in verdicts if not verdict.stored]
    if refused:
        log.info(
            "MQTT: %d readings refused (%s)",
            len(refused),
            ", ".join(sorted(set(map(str, refused)))),
        )


@contextlib.contextmanager
def exclusive(lock_path: Path) -> Iterator[bool]:
    """Whether this process holds ``lock_path``: one subscriber per client id on a host."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


async def run_one_per_host(
    subscriber: MqttSubscriber, lock_path: Path, poll_s: float = 5.0
) -> None:
    """Run ``subscriber`` in whichever worker process holds the lock; the others stand by.

    A persistent session belongs to one client id, and two connections with one id would keep
    taking it from each other; so of ``serve --workers N`` only one subscribes, and another
    takes over within ``poll_s`` if it dies.
    """
    while True:
        with exclusive(lock_path) as held:
            if held:
                try:
                    await subscriber.run()
                except Exception:  # a bug: start over rather than stop ingesting silently
                    log.exception("MQTT subscriber stopped; starting it again")
        await asyncio.sleep(poll_s)
