"""The merge rules of offline sync: pure functions, no I/O.

- Stock changes travel as deltas and commute; a count is a delta against the on-hand the
  replica last saw. A decrease that finds too little available stock applies as far as it can,
  and the shortfall becomes an exception (the inventory service does the clamping, under its
  row lock).
- Product fields are last-writer-wins registers, one per field, ordered by hybrid logical clock
  (``storekeeper.sync.hlc``); the server wins ties.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from storekeeper.sync.hlc import Hlc


class Status(StrEnum):
    """The verdict on one pushed mutation."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    REJECTED = "rejected"


STOCK_TYPES = ("stock.receive", "stock.adjust", "stock.count", "stock.sell")
PRODUCT_TYPES = ("product.update",)
MUTATION_TYPES = STOCK_TYPES + PRODUCT_TYPES


@dataclass(frozen=True, slots=True)
class StockDelta:
    """The ledger change an offline stock mutation stands for."""

    delta: int
    reason: str


def receive(qty: int) -> StockDelta:
    """Goods arrived: on-hand goes up by ``qty``."""
    return StockDelta(qty, "receipt")


def adjust(delta: int, reason: str) -> StockDelta:
    """A write-off (damage) or correction, as a signed delta."""
    return StockDelta(delta, reason)


def count(counted: int, seen_on_hand: int) -> StockDelta:
    """A count is the difference to what the replica last saw, not an absolute level.

    Two clerks who each received goods offline and counted them both count: each delta
    carries only what that clerk saw change, so the two add up instead of the later count
    overwriting the earlier one.
    """
    return StockDelta(counted - seen_on_hand, "count")


def sell(qty: int) -> StockDelta:
    """Units sold over the counter leave on-hand."""
    return StockDelta(-qty, "sale")


@dataclass(frozen=True, slots=True)
class FieldMerge:
    """Which fields of an offline edit won their last-writer-wins merge and which lost."""

    won: dict[str, Any] = field(default_factory=dict)
    lost: dict[str, str] = field(default_factory=dict)
    """Field name to the stamp that beat the edit."""


def merge_fields(held: Mapping[str, str], edits: Mapping[str, Any], stamp: Hlc) -> FieldMerge:
    """Per field, the edit wins if its stamp is later than the one the field holds.

    A field with no stamp yet (a product from before sync existed) takes any edit. Equal
    stamps cannot come from two writers (the node is part of the stamp) except the server
    against itself; the server outranks a replica at equal wall time and counter.
    """
    merge = FieldMerge()
    for name, value in edits.items():
        current = held.get(name)
        if current is None or stamp > Hlc.parse(current):
            merge.won[name] = value
        else:
            merge.lost[name] = current
    return merge


def range_ordered(low: float | None, high: float | None) -> bool:
    """Whether a temperature range is valid: a bound missing, or min not above max."""
    return low is None or high is None or low <= high


def storable(value: Any) -> bool:
    """Whether ``value`` can be stored as JSON on both databases (no NaN, NUL, lone surrogates)."""
    pending: list[Any] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif (isinstance(item, float) and not math.isfinite(item)) or (
            isinstance(item, int) and not isinstance(item, bool) and abs(item) >= 2**63
        ):
            return False
        elif isinstance(item, str):
            if "\x00" in item:
                return False
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
    return True
