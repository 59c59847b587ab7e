"""Events the ordering context publishes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """Fields every order event carries."""

    aggregate_type: ClassVar[str] = "order"

    order_id: str
    customer_id: str
    status: str
    total_cents: int
    currency: str

    @property
    def aggregate_id(self) -> str:
        """The order id."""
        return self.order_id


@dataclass(frozen=True, slots=True)
class OrderPlaced(OrderEvent):
    """An order was accepted and its stock reserved."""

    type: ClassVar[str] = "order.placed"


@dataclass(frozen=True, slots=True)
class OrderConfirmed(OrderEvent):
    """Payment was authorized; the order will ship."""

    type: ClassVar[str] = "order.confirmed"


@dataclass(frozen=True, slots=True)
class OrderCancelled(OrderEvent):
    """The order was cancelled and its reservation released."""

    type: ClassVar[str] = "order.cancelled"

    reason: str = ""


@dataclass(frozen=True, slots=True)
class OrderShipped(OrderEvent):
    """The reserved units left the warehouse as sales."""

    type: ClassVar[str] = "order.shipped"
