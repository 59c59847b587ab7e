"""Live events as clients see them, and who may see which: pure rules, no I/O.

The outbox holds each context's own events; a live client gets a public view of a few of them.
The four ``order.*`` events become one ``order.status_changed`` (a dashboard wants the new status,
not the saga's vocabulary).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storekeeper.accounts import policy
from storekeeper.accounts.domain import STAFF, Principal, Role
from storekeeper.errors import InvalidRequest
from storekeeper.events.rows import FeedRow

STOCK_CHANGED = "stock.changed"
ORDER_STATUS_CHANGED = "order.status_changed"
ALERT_RAISED = "alert.raised"
ALERT_CLEARED = "alert.cleared"
RESET = "reset"
PUBLIC_TYPES = (STOCK_CHANGED, ORDER_STATUS_CHANGED, ALERT_RAISED, ALERT_CLEARED)

_ORDER_TYPES = ("order.placed", "order.confirmed", "order.cancelled", "order.shipped")
SOURCE_TYPES = (STOCK_CHANGED, ALERT_RAISED, ALERT_CLEARED, *_ORDER_TYPES)
"""The outbox event types the hub reads."""


class UnknownEventType(InvalidRequest):
    """A ``types`` filter naming an event type the live endpoints do not send."""

    code = "unknown_event_type"


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One event as a live client receives it; ``position`` is its outbox id."""

    type: str
    position: int
    data: dict[str, Any]
    occurred_at: datetime | None = None

    def body(self) -> dict[str, Any]:
        """The JSON a client receives (the SSE ``data:`` line, a WebSocket message)."""
        return {
            "type": self.type,
            "position": self.position,
            "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None,
            "data": self.data,
        }


LEDGER_FIELDS = ("delta", "movement_id", "unit_cost_cents", "moved_at")
"""Fields of ``stock.changed`` that live clients are not sent."""


def from_row(row: FeedRow) -> LiveEvent | None:
    """The public event of an outbox row, or None for rows live clients never get."""
    payload = dict(row.payload)
    if row.type == STOCK_CHANGED:
        payload["available"] = payload.get("on_hand", 0) - payload.get("reserved", 0)
        # The movement's facts are for reporting's read model (a unit cost is for managers'
        # valuation, not every clerk's screen): live clients keep the documented levels.
        for name in LEDGER_FIELDS:
            payload.pop(name, None)
        return LiveEvent(STOCK_CHANGED, row.position, payload, row.occurred_at)
    if row.type in _ORDER_TYPES:
        payload["event"] = row.type
        return LiveEvent(ORDER_STATUS_CHANGED, row.position, payload, row.occurred_at)
    if row.type in (ALERT_RAISED, ALERT_CLEARED):
        return LiveEvent(row.type, row.position, payload, row.occurred_at)
    return None


def parse_types(text: str | None) -> frozenset[str]:
    """The ``types`` filter (comma-separated); absent or empty means every public type."""
    if not text or not text.strip():
        return frozenset(PUBLIC_TYPES)
    wanted = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(wanted - set(PUBLIC_TYPES))
    if unknown:
        raise UnknownEventType(
            f"unknown event type {', '.join(unknown)[:200]}: choose from {', '.join(PUBLIC_TYPES)}"
        )
    return wanted


def may_see(principal: Principal, event: LiveEvent) -> bool:
    """Whether ``principal`` may receive ``event``; the same rules as the HTTP reads.

    Stock and alerts: staff every warehouse, clerks their assigned ones, devices the warehouse of
    their scope, customers none. Order status: whoever may read the order (customers their own),
    never devices.
    """
    if event.type == ORDER_STATUS_CHANGED:
        if principal.role is Role.DEVICE:
            return False
        try:
            customer_id = uuid.UUID(str(event.data.get("customer_id")))
        except ValueError:
            return principal.has_role(STAFF)
        return policy.may_see_order(principal, customer_id=customer_id)
    return _may_see_warehouse(principal, str(event.data.get("warehouse")))


def _may_see_warehouse(principal: Principal, code: str) -> bool:
    if principal.has_role(STAFF):
        return True
    if principal.role is Role.CLERK:
        return code in principal.warehouses
    if principal.role is Role.DEVICE:
        return principal.scope == f"warehouse:{code}"
    return False
