"""The order state machine: which status may follow which. Pure rules."""

from __future__ import annotations

import enum
from collections.abc import Iterable

from storekeeper.errors import Conflict, InvalidRequest


class OrderStatus(enum.StrEnum):
    """Where an order stands; ``confirmed`` means paid or payment authorized."""

    PENDING_PAYMENT = "pending_payment"
    CONFIRMED = "confirmed"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"


_NEXT: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING_PAYMENT: frozenset({OrderStatus.CONFIRMED, OrderStatus.CANCELLED}),
    OrderStatus.CONFIRMED: frozenset({OrderStatus.SHIPPED, OrderStatus.CANCELLED}),
    OrderStatus.SHIPPED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}


class InvalidTransition(Conflict):
    """The order's current status does not allow the requested step."""

    code = "invalid_status"


def ensure_transition(current: OrderStatus, target: OrderStatus) -> None:
    """Raise InvalidTransition unless ``current`` may become ``target``."""
    if target not in _NEXT[current]:
        raise InvalidTransition(f"an order that is {current.value} cannot become {target.value}")


MAX_TOTAL_CENTS = 2**63 - 1
"""The largest total either database can store (BIGINT); prices and quantities can exceed it."""


class TotalTooLarge(InvalidRequest):
    """The order's total is more than can be stored, charged or shown."""

    code = "total_too_large"


def order_total(lines: Iterable[tuple[int, int]]) -> int:
    """The sum of ``qty * unit_price_cents`` over ``lines``, or :class:`TotalTooLarge`."""
    total = sum(qty * unit_price_cents for qty, unit_price_cents in lines)
    if total > MAX_TOTAL_CENTS:
        raise TotalTooLarge(f"the order's total exceeds {MAX_TOTAL_CENTS} cents")
    return total
