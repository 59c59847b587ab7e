"""Where the forecast reads daily demand from: a callable with the signature of the reporting
context's read model, ``storekeeper.reporting.service.daily_demand``.

TEMPORARY (issue 16, until the reporting read model lands): :func:`ledger_daily_demand` rebuilds
the same rows from the inventory service's ledger extract (``history.movements_since``) and
current levels. When ``storekeeper.reporting.service.daily_demand`` exists, ``DAILY_DEMAND``
below points at it and this function goes; nothing else changes.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from sqlalchemy.orm import Session

from storekeeper.inventory import history, levels

DemandRow = tuple[str, str, date, int, int]
"""(SKU, warehouse, day, units sold that day, on-hand at the end of the day)."""


class DemandSource(Protocol):
    """Daily demand of every series with movements, for every day from ``since`` to ``until``."""

    def __call__(self, session: Session, *, since: date, until: date) -> list[DemandRow]:
        """Rows in any order; days in UTC."""
        ...


def ledger_daily_demand(session: Session, *, since: date, until: date) -> list[DemandRow]:
    """Daily demand rebuilt from the ledger: units sold per day (movements with reason
    ``sale``, which order shipments record too) and on-hand at the end of each day (today's
    on-hand less every later movement)."""
    start = datetime.combine(since, time.min, tzinfo=UTC)
    days = (until - since).days + 1
    sold: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * days)
    net: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * days)
    after: dict[tuple[str, str], int] = defaultdict(int)  # movements after ``until``
    for sku, warehouse, delta, reason, created_at in history.movements_since(session, since=start):
        key = (sku, warehouse)
        index = (created_at.astimezone(UTC).date() - since).days
        if index >= days:
            after[key] += delta
            continue
        net[key][index] += delta
        if reason == "sale" and delta < 0:
            sold[key][index] -= delta
    on_hand_now = {(sku, wh): units for wh, sku, units in levels.on_hand_by_sku(session)}
    rows: list[DemandRow] = []
    for key, changes in net.items():
        closing = on_hand_now.get(key, 0) - after.get(key, 0)
        balances = [0] * days
        for index in range(days - 1, -1, -1):
            balances[index] = closing
            closing -= changes[index]
        sales = sold[key]
        rows.extend(
            (key[0], key[1], since + timedelta(days=index), sales[index], balances[index])
            for index in range(days)
        )
    return rows


DAILY_DEMAND: DemandSource = ledger_daily_demand
"""The source the forecast job uses (switch to ``reporting.service.daily_demand`` at merge)."""
