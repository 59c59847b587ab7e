"""W2's ceiling run: orders replayed through the raw driver from many threads, measured.

What one order issues lives in ``bench.replay``; this module generates orders like the HTTP load
does, runs the replay from N threads for a time window and reports rate and latencies.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench import seed
from bench.measure import percentile
from bench.replay import Driver, RawOrder, Replay, statements
from storekeeper.inventory.domain import Point

_MAX_ORDERS_PER_THREAD = 1_000_000


@dataclass(frozen=True, slots=True)
class RawResult:
    """What the replay measured in its window(s)."""

    orders: int
    refused: int
    duration_s: float
    threads: int
    latencies_ms: tuple[float, ...] = ()

    @property
    def rate(self) -> float:
        """Orders placed per second."""
        return self.orders / self.duration_s if self.duration_s else 0.0

    @property
    def p50_ms(self) -> float:
        """Median time per order, waiting for the write lock included."""
        return percentile(self.latencies_ms, 50)

    @property
    def p99_ms(self) -> float:
        """99th percentile time per order."""
        return percentile(self.latencies_ms, 99)

    def to_json(self) -> dict[str, Any]:
        """Rounded figures for a results file."""
        return {
            "orders": self.orders,
            "refused": self.refused,
            "duration_s": round(self.duration_s, 3),
            "rate_per_s": round(self.rate, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "threads": self.threads,
        }


def merge(results: list[RawResult]) -> RawResult:
    """Several replay runs as one."""
    return RawResult(
        orders=sum(r.orders for r in results),
        refused=sum(r.refused for r in results),
        duration_s=sum(r.duration_s for r in results),
        threads=max((r.threads for r in results), default=0),
        latencies_ms=tuple(x for r in results for x in r.latencies_ms),
    )


@dataclass
class _ThreadStats:
    latencies: list[float] = field(default_factory=list)
    refused: int = 0
    error: BaseException | None = None


def order_maker(
    *,
    sku_count: int,
    customers: list[seed.Customer],
    run_id: str,
    max_lines: int = 3,
    max_qty: int = 3,
) -> Callable[[random.Random, int, int], RawOrder]:
    """Orders like the HTTP load: 1..3 distinct random SKUs, 1..3 units, somewhere in Germany."""
    area = seed.SHIP_TO_AREA

    def make(rng: random.Random, thread: int, n: int) -> RawOrder:
        picked = rng.sample(range(sku_count), rng.randint(1, min(max_lines, sku_count)))
        customer = rng.choice(customers)
        return RawOrder(
            customer_id=customer.id,
            session_id=customer.session_id,
            key=f"{run_id}-{thread}-{n}",
            lines={seed.sku(i): rng.randint(1, max_qty) for i in picked},
            ship_to=Point(
                round(rng.uniform(area["lat_min"], area["lat_max"]), 4),
                round(rng.uniform(area["lon_min"], area["lon_max"]), 4),
            ),
        )

    return make


def _worker(
    driver: Driver,
    make: Callable[[random.Random, int, int], RawOrder],
    thread: int,
    window: tuple[float, float],
    stats: _ThreadStats,
) -> None:
    start, end = window
    rng = random.Random(1000 + thread)
    try:
        conn = driver.connect()
    except Exception as exc:  # reported by the caller
        stats.error = exc
        return
    replay = Replay(driver, statements(driver.backend), conn)
    try:
        for n in range(_MAX_ORDERS_PER_THREAD):
            if time.monotonic() >= end:
                break
            order = make(rng, thread, n)
            began = time.monotonic()
            placed = replay.place(order)
            finished = time.monotonic()
            if start <= finished <= end:
                if placed:
                    stats.latencies.append(finished - began)
                else:
                    stats.refused += 1
    except Exception as exc:  # reported by the caller
        stats.error = exc
    finally:
        conn.close()


def run(
    driver: Driver,
    make: Callable[[random.Random, int, int], RawOrder],
    *,
    threads: int,
    warmup_s: float,
    duration_s: float,
) -> RawResult:
    """Place orders from ``threads`` threads; measure only after ``warmup_s``."""
    start = time.monotonic() + warmup_s
    window = (start, start + duration_s)
    stats = [_ThreadStats() for _ in range(threads)]
    workers = [
        threading.Thread(target=_worker, args=(driver, make, i, window, stats[i]), daemon=True)
        for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=warmup_s + duration_s + 60)
    errors = [s.error for s in stats if s.error is not None]
    if errors:
        raise RuntimeError(f"{len(errors)} replay threads failed") from errors[0]
    latencies = tuple(x * 1e3 for s in stats for x in s.latencies)
    return RawResult(
        orders=len(latencies),
        refused=sum(s.refused for s in stats),
        duration_s=duration_s,
        threads=threads,
        latencies_ms=latencies,
    )
