"""After card orders: wait for the payment saga to settle them, and prove it did so once each.

The saga runs in the server's job threads; the bench only reads the database (reads never take
SQLite's writer lock) and the simulator's ``/_sim/stats``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import func, select, text

from bench.measure import percentile
from storekeeper.db import Database
from storekeeper.ordering.domain import OrderStatus
from storekeeper.ordering.models import Order

CARD = "card"
_POLL_S = 0.1
_PENDING = "SELECT COUNT(*) FROM ordering_order WHERE status = 'pending_payment'"
_BACKGROUND = (
    "SELECT (SELECT COUNT(*) FROM events_outbox WHERE published_at IS NULL), "
    "(SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running'))"
)
_FAILED_JOBS = "SELECT name, COUNT(*) FROM jobs WHERE status = 'failed' GROUP BY name"
_HOLDING = (OrderStatus.CONFIRMED.value, OrderStatus.SHIPPED.value)
"""Statuses of an order whose money the gateway should hold."""


def _scalar(db: Database, sql: str) -> int:
    with db.reading() as session:
        return int(session.execute(text(sql)).scalar_one())


def pending(db: Database) -> int:
    """Orders still waiting for their payment."""
    return _scalar(db, _PENDING)


def background_backlog(db: Database) -> tuple[int, int]:
    """Outbox events not yet relayed, and jobs queued or running."""
    with db.reading() as session:
        events, jobs = session.execute(text(_BACKGROUND)).one()
    return int(events), int(jobs)


def wait_until(done: Callable[[], bool], *, timeout_s: float) -> float | None:
    """Poll ``done`` until it holds; seconds waited, or None after ``timeout_s``."""
    started = time.monotonic()
    while not done():
        if time.monotonic() - started > timeout_s:
            return None
        time.sleep(_POLL_S)
    return time.monotonic() - started


def wait_idle(db: Database, *, timeout_s: float) -> float | None:
    """Wait until nothing is pending: payments, outbox events, jobs (refunds, e-mails)."""
    return wait_until(
        lambda: pending(db) == 0 and background_backlog(db) == (0, 0), timeout_s=timeout_s
    )


@dataclass(frozen=True, slots=True)
class Settled:
    """The card orders placed since a moment, and how long the saga took to settle them."""

    orders: int
    confirmed: int
    cancelled: int
    pending: int
    settle_s: float
    """From the moment to the last of them settled (confirmed or cancelled)."""
    latencies_ms: tuple[float, ...]
    """Per settled order: placed -> settled."""

    @property
    def settled(self) -> int:
        """Orders confirmed or cancelled."""
        return self.confirmed + self.cancelled


def settled_since(db: Database, since: datetime) -> Settled:
    """Card orders created at or after ``since`` (server clock = this machine's clock)."""
    with db.reading() as session:
        rows = session.execute(
            select(Order.status, Order.created_at, Order.updated_at).where(
                Order.payment_method == CARD, Order.created_at >= since
            )
        ).all()
    done = [r for r in rows if r.status != OrderStatus.PENDING_PAYMENT.value]
    last = max((r.updated_at for r in done), default=since)
    return Settled(
        orders=len(rows),
        confirmed=sum(1 for r in rows if r.status in _HOLDING),
        cancelled=sum(1 for r in rows if r.status == OrderStatus.CANCELLED.value),
        pending=len(rows) - len(done),
        settle_s=(last - since).total_seconds(),
        latencies_ms=tuple((r.updated_at - r.created_at).total_seconds() * 1e3 for r in done),
    )


def merge(runs: list[Settled]) -> Settled:
    """Several settled windows as one (their times add up)."""
    return Settled(
        orders=sum(r.orders for r in runs),
        confirmed=sum(r.confirmed for r in runs),
        cancelled=sum(r.cancelled for r in runs),
        pending=sum(r.pending for r in runs),
        settle_s=sum(r.settle_s for r in runs),
        latencies_ms=tuple(x for r in runs for x in r.latencies_ms),
    )


@dataclass(frozen=True, slots=True)
class Saga:
    """Every card order of a run against what the gateway holds; see ``ok``."""

    orders: int
    confirmed: int
    cancelled: int
    pending: int
    cancel_reasons: dict[str, int]
    failed_jobs: dict[str, int]
    max_authorizations_per_order: int
    held_not_confirmed: int
    """Orders the gateway holds money for that are not confirmed: charged for nothing."""
    confirmed_not_held: int
    """Confirmed orders the gateway holds nothing for: shipped without payment."""
    sim: dict[str, Any]

    @property
    def held_equals_confirmed(self) -> bool:
        """The gateway holds money for exactly the confirmed orders."""
        return not (self.held_not_confirmed or self.confirmed_not_held)

    @property
    def problems(self) -> list[str]:
        """Each broken invariant, in words; empty when the run is clean."""
        found = []
        if self.pending:
            found.append(f"{self.pending} orders left pending_payment")
        if self.max_authorizations_per_order > 1:
            found.append(
                f"an order was authorized {self.max_authorizations_per_order} times "
                "(max_authorizations_per_order > 1)"
            )
        if not self.held_equals_confirmed:
            found.append(
                f"gateway holds money for {self.held_not_confirmed} orders not confirmed, "
                f"none for {self.confirmed_not_held} confirmed ones"
            )
        if self.failed_jobs:
            found.append(f"jobs failed for good: {self.failed_jobs}")
        return found

    def to_json(self) -> dict[str, Any]:
        """The figures, the verdicts and the simulator's counters (held orders counted)."""
        sim = {k: v for k, v in self.sim.items() if k != "held_orders"}
        return {
            "orders": self.orders,
            "confirmed": self.confirmed,
            "cancelled": self.cancelled,
            "pending": self.pending,
            "cancel_reasons": self.cancel_reasons,
            "failed_jobs": self.failed_jobs,
            "max_authorizations_per_order": self.max_authorizations_per_order,
            "held_orders": len(self.sim.get("held_orders", [])),
            "held_equals_confirmed": self.held_equals_confirmed,
            "held_not_confirmed": self.held_not_confirmed,
            "confirmed_not_held": self.confirmed_not_held,
            "sim": sim,
            "ok": not self.problems,
        }


def sim_stats(sim_url: str) -> dict[str, Any]:
    """The simulator's counters (``GET /_sim/stats``)."""
    response = httpx.get(f"{sim_url}/_sim/stats", timeout=10)
    response.raise_for_status()
    stats: dict[str, Any] = response.json()
    return stats


def verify(db: Database, sim_url: str) -> Saga:
    """Every card order settled, each authorized at most once, money held for exactly the
    confirmed ones (to be called once refunds have run: see ``wait_idle``)."""
    stats = sim_stats(sim_url)
    card = Order.payment_method == CARD
    with db.reading() as session:
        statuses = {
            str(status): int(n)
            for status, n in session.execute(
                select(Order.status, func.count()).where(card).group_by(Order.status)
            )
        }
        reasons = session.execute(
            select(Order.cancel_reason, func.count())
            .where(card, Order.status == OrderStatus.CANCELLED.value)
            .group_by(Order.cancel_reason)
        )
        cancel_reasons = {str(reason): int(n) for reason, n in reasons}
        confirmed = {
            str(order_id)
            for order_id in session.scalars(
                select(Order.id).where(card, Order.status.in_(_HOLDING))
            )
        }
        failed = {str(name): int(n) for name, n in session.execute(text(_FAILED_JOBS))}
    held = set(stats["held_orders"])
    return Saga(
        orders=sum(statuses.values()),
        confirmed=len(confirmed),
        cancelled=int(statuses.get(OrderStatus.CANCELLED.value, 0)),
        pending=int(statuses.get(OrderStatus.PENDING_PAYMENT.value, 0)),
        cancel_reasons=cancel_reasons,
        failed_jobs=failed,
        max_authorizations_per_order=int(stats["max_authorizations_per_order"]),
        held_not_confirmed=len(held - confirmed),
        confirmed_not_held=len(confirmed - held),
        sim=stats,
    )


def settle_percentiles(settled: Settled) -> tuple[float, float]:
    """p50 and p99 of placed -> settled, in ms."""
    return percentile(settled.latencies_ms, 50), percentile(settled.latencies_ms, 99)
