"""The payment gateway port and the adapters behind it.

The order flow asks a gateway to authorize a payment, later to capture or refund it. ``manual``
(cash, invoice) answers at once; ``card`` talks to a remote gateway over HTTP (``http.py``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol


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


class RefundOutcome(enum.StrEnum):
    """What a refund did: money back, a hold released, or nothing was ever taken."""

    REFUNDED = "refunded"
    VOIDED = "voided"
    NOTHING = "nothing"


class GatewayUnavailable(Exception):
    """The gateway gave no usable answer: timeout, connection error, 5xx, or circuit open.

    A declined card is not this: it is an ``Authorization`` with status ``DECLINED``. Callers
    may try again later with the same order id; every call is idempotent per order.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GatewayRejected(GatewayUnavailable):
    """The gateway answered but refused the request (a 4xx other than a decline, or a body
    outside the contract): a bug or a state mismatch that sending the same request again will
    not fix, so a job should stop retrying and raise the alarm."""


class PaymentGateway(Protocol):
    """What the ordering context needs from a payment provider.

    ``remote`` tells the ordering code where to call it: a gateway that answers at once
    (``False``) is asked inside the order transaction, a remote one in a background job, so that
    no database transaction waits on the network.
    """

    name: str
    remote: bool

    def authorize(
        self, *, order_id: str, amount_cents: int, currency: str, token: str
    ) -> Authorization:
        """Ask for ``amount_cents``; idempotent per ``order_id``."""
        ...

    def capture(self, *, order_id: str, amount_cents: int) -> None:
        """Take the authorized money; idempotent per ``order_id``."""
        ...

    def refund(self, *, order_id: str) -> RefundOutcome:
        """Give the money back, or release the hold; idempotent per ``order_id``.

        For an order the gateway has never seen this records a void, so that an authorization
        still on its way (a retry, a slow request) is declined rather than charged.
        """
        ...

    def close(self) -> None:
        """Release connections (at shutdown)."""
        ...


class ManualGateway:
    """Cash on delivery or invoice: nothing to ask, so it authorizes at once."""

    name = "manual"
    remote = False

    def authorize(
        self, *, order_id: str, amount_cents: int, currency: str, token: str
    ) -> Authorization:
        """Authorize immediately; the reference is the order id."""
        return Authorization(AuthorizationStatus.AUTHORIZED, reference=f"manual:{order_id}")

    def capture(self, *, order_id: str, amount_cents: int) -> None:
        """Nothing to do: the money changes hands outside Storekeeper."""

    def refund(self, *, order_id: str) -> RefundOutcome:
        """Voided: no money was ever taken through Storekeeper."""
        return RefundOutcome.VOIDED

    def close(self) -> None:
        """Nothing to release."""
