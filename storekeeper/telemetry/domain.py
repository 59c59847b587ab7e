"""Pure telemetry rules: which readings are plausible, a room's effective range, excursions,
and series buckets. No database, no web framework: the service feeds these with rows."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from storekeeper.telemetry.readings import ReadingIn

MIN_TEMP_C = -90.0
MAX_TEMP_C = 70.0
"""Physically possible for a storage room (the coldest freezers run at about -86 C)."""

MAX_CLOCK_AHEAD = timedelta(minutes=5)
"""How far a sensor's clock may run ahead of ours before its readings are refused."""

MINUTE_RETENTION = timedelta(days=400)
"""How long minute aggregates are kept (raw readings: ``telemetry_raw_retention_days``)."""


def rejection(reading: ReadingIn, *, now: datetime, oldest: datetime) -> str | None:
    """Why ``reading`` cannot be stored whatever its sensor, or None if its values are plausible."""
    if reading.ts.tzinfo is None:
        return "naive_timestamp"
    if not math.isfinite(reading.temp_c) or (
        reading.humidity is not None and not math.isfinite(reading.humidity)
    ):
        return "not_finite"
    if not MIN_TEMP_C <= reading.temp_c <= MAX_TEMP_C:
        return "impossible_temperature"
    if reading.humidity is not None and not 0.0 <= reading.humidity <= 100.0:
        return "impossible_humidity"
    if reading.ts > now + MAX_CLOCK_AHEAD:
        return "future_timestamp"
    if reading.ts < oldest:
        return "too_old"
    return None


@dataclass(frozen=True, slots=True)
class TempRange:
    """An allowed temperature range; an open end is None."""

    low: float | None = None
    high: float | None = None

    def narrowed(self, other: TempRange) -> TempRange:
        """The intersection of both ranges (it may be empty: then nothing is in range)."""
        return TempRange(_pick(max, self.low, other.low), _pick(min, self.high, other.high))

    def is_empty(self) -> bool:
        """Whether no temperature is in range (the low end above the high end)."""
        return self.low is not None and self.high is not None and self.low > self.high

    def contains(self, temp_c: float) -> bool:
        """Whether ``temp_c`` is allowed."""
        return (self.low is None or temp_c >= self.low) and (
            self.high is None or temp_c <= self.high
        )


def _pick(
    choose: Callable[[float, float], float], a: float | None, b: float | None
) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return float(choose(a, b))


def effective_range(room: TempRange, products: Iterable[TempRange]) -> TempRange:
    """The narrowest of the room's range and those of the products that can be kept in it.

    Stock is known per warehouse, not per room: a warehouse with a freezer, a chiller and a
    dry store holds products whose ranges do not overlap at all. A product whose range does not
    overlap the room's (as narrowed so far) cannot be kept in this room, so it is taken to be
    in another room and leaves this one's range alone.
    """
    result = room
    for product in sorted(products, key=_narrowness):
        narrowed = result.narrowed(product)
        if not narrowed.is_empty():
            result = narrowed
    return result


def _narrowness(span: TempRange) -> float:
    # Widest first: a wide product range narrows little and leaves room for the narrow ones.
    if span.low is None or span.high is None:
        return -math.inf
    return -(span.high - span.low)


@dataclass(frozen=True, slots=True)
class Excursion:
    """A sensor's alert state: the newest reading seen, when it left its range, its open alert."""

    last_ts: datetime | None = None
    started_at: datetime | None = None
    alerting: bool = False


@dataclass(frozen=True, slots=True)
class Transition:
    """An alert to raise (``raise_=True``) or to clear, caused by one reading."""

    raise_: bool
    ts: datetime
    temp_c: float
    started_at: datetime | None = None


def evaluate(
    state: Excursion,
    readings: Sequence[tuple[datetime, float]],
    *,
    allowed: TempRange,
    grace: timedelta,
) -> tuple[Excursion, list[Transition]]:
    """Run (timestamp, temperature) readings through the excursion rules, oldest first.

    Readings no newer than the last one evaluated are ignored: a late or replayed reading must
    not reopen or close an excursion that later readings already decided. An alert is raised
    once the excursion has lasted longer than ``grace`` by reading timestamps, and cleared by
    the first reading back in range.
    """
    newest = max(ts for ts, _ in readings) if readings else None
    calm = state.started_at is None and not state.alerting
    if calm and newest is not None and all(allowed.contains(t) for _, t in readings):
        # The common case, cheaply: all in range and nothing pending; only the clock moves.
        return replace(state, last_ts=max(newest, state.last_ts or newest)), []
    transitions: list[Transition] = []
    for ts, temp_c in sorted(readings):
        if state.last_ts is not None and ts <= state.last_ts:
            continue
        state = replace(state, last_ts=ts)
        if allowed.contains(temp_c):
            if state.alerting:
                transitions.append(Transition(raise_=False, ts=ts, temp_c=temp_c))
            state = replace(state, started_at=None, alerting=False)
            continue
        started = state.started_at or ts
        state = replace(state, started_at=started)
        if not state.alerting and ts - started > grace:
            transitions.append(Transition(raise_=True, ts=ts, temp_c=temp_c, started_at=started))
            state = replace(state, alerting=True)
    return state, transitions


_BUCKET = re.compile(r"^([1-9][0-9]{0,5})([mhd])$")
_UNIT_MINUTES = {"m": 1, "h": 60, "d": 1440}
DEFAULT_BUCKETS = (1, 5, 15, 60, 360, 1440, 10080)
"""Bucket widths in minutes the default picks from: the smallest giving at most MAX_POINTS."""
MAX_POINTS = 10_000
"""At most this many buckets in one series answer."""


def parse_bucket(text: str) -> int:
    """A bucket like ``5m``, ``1h`` or ``1d`` in minutes; ValueError with a reason otherwise."""
    match = _BUCKET.match(text)
    if not match:
        raise ValueError(
            f"bucket {text!r} is not a whole number of minutes, hours or days such as 1m, 5m, "
            "1h or 1d (readings are downsampled per minute, so a bucket is at least 1m)"
        )
    return int(match.group(1)) * _UNIT_MINUTES[match.group(2)]


def default_bucket(span_minutes: int, *, points: int = 500) -> int:
    """The smallest usual bucket that draws ``span_minutes`` in at most ``points`` buckets."""
    for minutes in DEFAULT_BUCKETS:
        if span_minutes / minutes <= points:
            return minutes
    return DEFAULT_BUCKETS[-1]


def epoch_minute(moment: datetime) -> int:
    """The minute ``moment`` falls in, counted from the Unix epoch."""
    return math.floor(moment.timestamp()) // 60
