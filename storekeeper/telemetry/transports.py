"""What the MQTT and TCP transports share: device-token checks, parsing, and handing batches over.

Both transports only turn bytes into :class:`ReadingIn` and answer; validation and storage are
the telemetry service's, reached through an :class:`Ingest` callable so tests and benchmarks can
wire the real service or a stand-in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Protocol

from storekeeper.accounts import authentication
from storekeeper.accounts.domain import Principal
from storekeeper.bootstrap import Container
from storekeeper.errors import DomainError
from storekeeper.observability import metrics
from storekeeper.telemetry.readings import ReadingIn, Transport, Verdict

log = logging.getLogger(__name__)

# How long a device's session is trusted before it is read again: revoking a device stops its
# connections within this time, at the cost of one indexed read per device per interval.
SESSION_RECHECK_S = 30.0


class Ingest(Protocol):
    """The telemetry service's ``ingest``: validate and store readings, one verdict each."""

    def __call__(
        self,
        container: Container,
        principal: Principal,
        readings: Sequence[ReadingIn],
        *,
        transport: Transport,
    ) -> list[Verdict]: ...


def service_ingest() -> Ingest:
    """The real telemetry service's ``ingest`` (imported late: it is another module's code)."""
    from storekeeper.telemetry import service

    return service.ingest


class Unparseable(ValueError):
    """A reading that cannot be read at all; ``reason`` is the short word sent back."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_timestamp(value: object) -> datetime:
    """Unix seconds (int, float or their text) or ISO 8601; without an offset it means UTC."""
    if isinstance(value, bool):  # JSON true is an int to Python, never a time
        raise Unparseable("bad_timestamp")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise Unparseable("bad_timestamp") from None
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    else:
        raise Unparseable("bad_timestamp")
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):  # nan, inf, years past 9999
        raise Unparseable("bad_timestamp") from None


def parse_number(value: object) -> float:
    """A finite number; NaN and infinities would slip through range checks, so they are refused."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise Unparseable("bad_number")
    try:
        number = float(value)
    except ValueError:
        raise Unparseable("bad_number") from None
    if not math.isfinite(number):
        raise Unparseable("bad_number")
    return number


def parse_line(line: str) -> ReadingIn:
    """One TCP line ``sensor,ts,temp_c[,humidity]`` (surrounding spaces allowed)."""
    fields = [field.strip() for field in line.split(",")]
    if len(fields) not in (3, 4) or not fields[0] or not fields[0].isprintable():
        raise Unparseable("unparseable")
    humidity = parse_number(fields[3]) if len(fields) == 4 and fields[3] else None
    return ReadingIn(
        sensor=fields[0],
        ts=parse_timestamp(fields[1]),
        temp_c=parse_number(fields[2]),
        humidity=humidity,
    )


def count_rejected(transport: Transport, reason: str, count: int = 1) -> None:
    """Count readings refused before they reached the service (it counts its own verdicts)."""
    metrics.TELEMETRY_READINGS.labels(transport, "rejected", reason).inc(count)


class DeviceAuthenticator:
    """Checks device tokens, caching live sessions for :data:`SESSION_RECHECK_S`.

    The signature is checked on every call (microseconds); the database read that proves the
    session is still alive happens once per token per interval, not once per reading.
    """

    def __init__(
        self,
        container: Container,
        *,
        recheck_s: float = SESSION_RECHECK_S,
        max_cached: int = 10_000,
    ) -> None:
        self._container = container
        self._recheck_s = recheck_s
        self._max_cached = max_cached
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    async def principal(self, token: str) -> Principal:
        """The device behind ``token``, or :class:`NotAuthenticated` / :class:`PermissionDenied`."""
        cached = self._cache.get(token)
        if cached is not None and time.monotonic() - cached[1] < self._recheck_s:
            self._cache.move_to_end(token)
            return cached[0]
        self._cache.pop(token, None)
        container = self._container
        key, roles = container.signing_key, container.settings.require_2fa_roles
        found = await container.db.read(
            lambda conn: authentication.authenticate(
                conn,
                token,
                key=key,
                allowed_types=authentication.DEVICE_TOKENS,
                two_factor_roles=roles,
            )
        )
        self._cache[token] = (found, time.monotonic())
        if len(self._cache) > self._max_cached:
            self._cache.popitem(last=False)
        return found


async def store(
    container: Container,
    ingest: Ingest,
    principal: Principal,
    readings: Sequence[ReadingIn],
    *,
    transport: Transport,
) -> list[Verdict]:
    """Run ``ingest`` in a worker thread; a failure rejects the batch instead of crashing."""
    if not readings:
        return []
    try:
        return await asyncio.to_thread(ingest, container, principal, readings, transport=transport)
    except DomainError as exc:
        reason = exc.code
    except Exception:  # the database went away or a bug: the client is told, the loop goes on
        log.exception("telemetry %s: storing %d readings failed", transport, len(readings))
        reason = "unavailable"
    count_rejected(transport, reason, len(readings))
    return [Verdict(stored=False, reason=reason)] * len(readings)


@contextlib.asynccontextmanager
async def running(container: Container) -> AsyncIterator[None]:
    """Serve the TCP line protocol and the MQTT subscription as the settings ask, for the block.

    ``STOREKEEPER_TELEMETRY_PORT=0`` turns the TCP listener off; an empty
    ``STOREKEEPER_MQTT_URL`` (the default) the subscriber.
    """
    # Imported here: both modules build on this one.
    from storekeeper.telemetry.mqtt import MqttOptions, MqttSubscriber, run_one_per_host
    from storekeeper.telemetry.tcp import TcpLimits, TcpTelemetryServer

    settings = container.settings
    auth = DeviceAuthenticator(container)
    tcp: TcpTelemetryServer | None = None
    if settings.telemetry_port:
        limits = TcpLimits(
            max_connections=settings.telemetry_max_connections,
            idle_timeout_s=settings.telemetry_idle_timeout_s,
        )
        tcp = TcpTelemetryServer(
            container, host=settings.host, port=settings.telemetry_port, limits=limits, auth=auth
        )
        await tcp.start()
    subscriptions: list[asyncio.Task[None]] = []
    if settings.mqtt_url:
        client_id = settings.mqtt_client_id or (
            f"{settings.broker_prefix}-telemetry-{socket.gethostname()}"
        )
        options = MqttOptions(
            url=settings.mqtt_url,
            client_id=client_id,
            topic_prefix=settings.mqtt_topic_prefix,
            shared_group=settings.broker_prefix,
            connections=settings.mqtt_connections,
        )
        subscriber = MqttSubscriber(container, options, auth=auth)
        lock = settings.data_dir / f"mqtt-{client_id}.lock"
        subscriptions.append(asyncio.create_task(run_one_per_host(subscriber, lock)))
    try:
        yield
    finally:
        for subscription in subscriptions:
            subscription.cancel()
        await asyncio.gather(*subscriptions, return_exceptions=True)
        if tcp is not None:
            await tcp.stop()
