"""What a load run measured, and how runs and latency distributions are combined."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """What to send: a script of ``bench/lua`` and the ``CONFIG`` table it reads."""

    script: str
    config: dict[str, Any]
    count_statuses: bool = False


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one or more load runs measured."""

    requests: int
    duration_s: float
    max_ms: float
    non_2xx: int
    socket_errors: int
    generator: str
    statuses: dict[str, int] = field(default_factory=dict)
    quantiles: tuple[tuple[float, float], ...] = ()
    """Latency distribution as (latency ms, weight in requests) points, for merging runs."""

    @property
    def rate(self) -> float:
        """Completed requests per second."""
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def p50_ms(self) -> float:
        """Median latency."""
        return weighted_percentile(self.quantiles, 50)

    @property
    def p99_ms(self) -> float:
        """99th percentile latency."""
        return weighted_percentile(self.quantiles, 99)

    def to_json(self) -> dict[str, Any]:
        """The figures, rounded for a results file."""
        return {
            "requests": self.requests,
            "duration_s": round(self.duration_s, 3),
            "rate_per_s": round(self.rate, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "max_ms": round(self.max_ms, 3),
            "non_2xx": self.non_2xx,
            "socket_errors": self.socket_errors,
            "statuses": self.statuses,
            "generator": self.generator,
        }


def merge(results: list[LoadResult]) -> LoadResult:
    """Several runs of the same load as one: counts and times add up, latencies mix."""
    statuses: Counter[str] = Counter()
    for result in results:
        statuses.update(result.statuses)
    return LoadResult(
        requests=sum(r.requests for r in results),
        duration_s=sum(r.duration_s for r in results),
        max_ms=max((r.max_ms for r in results), default=0.0),
        non_2xx=sum(r.non_2xx for r in results),
        socket_errors=sum(r.socket_errors for r in results),
        generator=results[0].generator if results else "",
        statuses=dict(statuses),
        quantiles=tuple(q for r in results for q in r.quantiles),
    )


def weighted_percentile(points: tuple[tuple[float, float], ...], pct: float) -> float:
    """The ``pct`` percentile of a distribution given as (value, weight) points."""
    total = sum(weight for _, weight in points)
    if not total:
        return 0.0
    wanted, seen = total * pct / 100, 0.0
    for value, weight in sorted(points):
        seen += weight
        if seen >= wanted:
            return value
    return max(value for value, _ in points)


def percentile(values: list[float] | tuple[float, ...], pct: float) -> float:
    """The nearest-rank percentile of ``values`` (0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(len(ordered) * pct / 100))
    return ordered[rank - 1]


def points(latencies_ms: list[float], requests: int) -> tuple[tuple[float, float], ...]:
    """(value, weight) points from quantiles spread evenly over ``requests`` requests."""
    if not latencies_ms:
        return ()
    weight = requests / len(latencies_ms)
    return tuple((value, weight) for value in latencies_ms)
