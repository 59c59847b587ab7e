"""The payment gateway port and the adapters behind it.

The order flow asks a gateway to authorize a payment. ``manual`` (cash, invoice) authorizes at
once; card payments through an HTTP gateway arrive with the payment saga.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from storekeeper.config import Settings


class AuthorizationStatus(enum.StrEnum):
    """How a gateway answered."""

    AUTHORIZED = "authorized"
    PENDING = "pending"
    DECLINED = "declined"


@dataclass(frozen=True, slots=True)
class Authorization:
    """A gateway's answer to an authorization request."""

    status: AuthorizationStatus
    reference: str
    reason: str = ""


class PaymentGateway(Protocol):
    """What the ordering context needs from a payment provider."""

    name: str

    def authorize(
        self, *, order_id: str, amount_cents: int, currency: str, token: str
    ) -> Authorization:
        """Ask for ``amount_cents``; idempotent per ``order_id``."""
        ...


class ManualGateway:
    """Cash on delivery or invoice: nothing to ask, so it authorizes at once."""

    name = "manual"

    def authorize(
        self, *, order_id: str, amount_cents: int, currency: str, token: str
    ) -> Authorization:
        """Authorize immediately; the reference is the order id."""
        return Authorization(AuthorizationStatus.AUTHORIZED, reference=f"manual:{order_id}")


def configured_gateways(settings: Settings) -> dict[str, PaymentGateway]:
    """The gateways available with these settings, by payment method name."""
    return {"manual": ManualGateway()}
