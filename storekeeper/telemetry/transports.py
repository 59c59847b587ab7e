"""What the MQTT and TCP transports share: device-token checks, parsing, and handing batches over.

Both transports only turn bytes into :class:`ReadingIn` and answer; validation and storage are
the telemetry service's, reached through an :class:`Ingest` callable so tests and benchmarks can
wire the real service or a stand-in.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from storekeeper.accounts import authentication
from storekeeper.accounts.domain import Principal
from storekeeper.errors import DomainError
from storekeeper.observability import metrics
from storekeeper.telemetry.readings import ReadingIn, Transport, Verdict

log = logging.getLogger(__name__)

# How long a device's session is trusted before it is read again: revoking a device stops its
# connections within this time, at the cost of one indexed read per device per interval.
SESSION_RECHECK_S = 30.0


class Ingest(Protocol):
    """The telemetry service's ``ingest``, bound to its store: one verdict per reading.

    The composition root binds the real one; tests and benchmarks may pass a stand-in.
    """

    def __call__(
        self,
        principal: Principal,
        readings: Sequence[ReadingIn],
        *,
        transport: Transport,
    ) -> list[Verdict]: ...


class Unparseable(ValueError):
    """A reading that cannot be read at all; ``reason`` is the short word sent back."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_timestamp(value: object) -> datetime:
    """Unix seconds (int, float or their text) or ISO 8601; without an offset it means UTC."""
    if isinstance(value, bool):  # JSON true is an int to Python, never a time
        raise Unparseable("bad_timestamp")
    if not isinstance(value, int | float | str):
        raise Unparseable("bad_timestamp")
    # Every failure below is the sender's: a 400-digit integer overflows float(), an ISO time
    # near year 1 or 9999 overflows when moved to UTC. All of them are the same refusal.
    try:
        if isinstance(value, str):
            text = value.strip()
            try:
                seconds = float(text)
            except ValueError:
                moment = datetime.fromisoformat(text)
                return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
        else:
            seconds = float(value)
        return datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):  # nan, inf, years past 9999, not a time
        raise Unparseable("bad_timestamp") from None


def parse_number(value: object) -> float:
    """A finite number; NaN and infinities would slip through range checks, so they are refused."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise Unparseable("bad_number")
    try:
        number = float(value)
    except (ValueError, OverflowError):  # OverflowError: an integer of hundreds of digits
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
        authenticator: authentication.Authenticator,
        *,
        recheck_s: float = SESSION_RECHECK_S,
        max_cached: int = 10_000,
    ) -> None:
        self._authenticator = authenticator
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
        found = await self._authenticator.principal(
            token, allowed_types=authentication.DEVICE_TOKENS
        )
        self._cache[token] = (found, time.monotonic())
        if len(self._cache) > self._max_cached:
            self._cache.popitem(last=False)
        return found


async def store(
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
        return await asyncio.to_thread(ingest, principal, readings, transport=transport)
    except DomainError as exc:
        reason = exc.code
    except Exception:  # the database went away or a bug: the client is told, the loop goes on
        log.exception("telemetry %s: storing %d readings failed", transport, len(readings))
        reason = "unavailable"
    count_rejected(transport, reason, len(readings))
    return [Verdict(stored=False, reason=reason)] * len(readings)
