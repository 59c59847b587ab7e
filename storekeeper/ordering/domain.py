"""The order state machine: which status may follow which. Pure rules."""

from __future__ import annotations

import enum

from storekeeper.errors import Conflict


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
