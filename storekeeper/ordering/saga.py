"""The payment saga of docs/design.md section 4, steps 4-6, for gateways on the network.

``place`` reserves stock, writes the order as ``pending_payment`` and queues ``collect_payment``
in one transaction. The job asks the gateway (outside any transaction: it may be slow) and then
settles the order: ``confirmed`` when authorized, ``cancelled`` with a reason when declined or
when the gateway is unreachable (timeout, errors after retries, open circuit). Cancelling releases
the reservation at once and queues ``refund_payment``, which voids or refunds whatever the gateway
may hold under the order's idempotency key — also when our request timed out but the gateway
authorized. The sweeper cancels orders left ``pending_payment`` past the deadline, so none stays
there forever whatever happened to its job.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storekeeper.config import Settings
from storekeeper.db import Database, utcnow
from storekeeper.ordering import service
from storekeeper.ordering.domain import OrderStatus
from storekeeper.ordering.models import Order
from storekeeper.ordering.stock import InventoryPort
from storekeeper.payments.gateway import (
    AuthorizationStatus,
    GatewayRejected,
    GatewayUnavailable,
    PaymentGateway,
)
from storekeeper.tasks.queue import PermanentJobError

log = logging.getLogger(__name__)
SWEEP_BATCH = 100

Gateways = Mapping[str, PaymentGateway]


@dataclass(frozen=True, slots=True)
class Settlement:
    """How an order awaiting payment ends: confirmed with ``reference``, or cancelled."""

    reference: str | None = None
    reason: str = ""


class StillPending(RuntimeError):
    """The gateway has not decided yet; the job asks again later (the sweeper bounds the wait)."""


def authorize(
    gateways: Gateways, *, method: str, order_id: str, amount_cents: int, currency: str, token: str
) -> Settlement:
    """Ask the method's gateway to authorize the amount; what its answer means for the order."""
    gateway = gateways.get(method)
    if gateway is None:
        return Settlement(reason=f"payment method {method!r} is not configured")
    try:
        answer = gateway.authorize(
            order_id=order_id, amount_cents=amount_cents, currency=currency, token=token
        )
    except GatewayRejected as exc:
        return Settlement(reason=f"payment gateway refused the request: {exc.reason}")
    except GatewayUnavailable as exc:
        return Settlement(reason=f"payment gateway unavailable: {exc.reason}")
    if answer.status is AuthorizationStatus.AUTHORIZED:
        return Settlement(reference=answer.reference)
    if answer.status is AuthorizationStatus.DECLINED:
        return Settlement(reason=f"payment declined: {answer.reason}")
    raise StillPending(f"authorization of order {order_id} is still pending")


def collect_payment(
    args: dict[str, Any], *, db: Database, gateways: Gateways, inventory: InventoryPort
) -> None:
    """Ask the gateway to authorize the order's total, then confirm or cancel the order."""
    order_id = uuid.UUID(args["order_id"])
    with db.reading() as session:
        order = _order(session, order_id)
        if order.status != OrderStatus.PENDING_PAYMENT:
            return  # cancelled (by the customer or the sweeper) before we got to it
        method, amount, currency = order.payment_method, order.total_cents, order.currency
    settlement = authorize(
        gateways,
        method=method,
        order_id=str(order_id),
        amount_cents=amount,
        currency=currency,
        token=args["token"],
    )
    _settle(db, gateways, inventory, order_id, settlement)


def _settle(
    db: Database,
    gateways: Gateways,
    inventory: InventoryPort,
    order_id: uuid.UUID,
    settlement: Settlement,
) -> None:
    """Confirm or cancel an order still awaiting payment, as ``settlement`` says."""
    reference, reason = settlement.reference, settlement.reason
    with db.transaction() as session:
        order = service.get_for_update(session, order_id=order_id)
        if order.status != OrderStatus.PENDING_PAYMENT:
            if reference is not None:
                # Authorized after the order was cancelled: give the money back.
                service.request_refund(session, order)
            return
        if reference is not None:
            service.confirm(session, order=order, reference=reference)
        else:
            service.cancel(
                session, order=order, reason=reason, gateways=gateways, inventory=inventory
            )
    log.info(
        "order %s %s%s",
        order_id,
        "confirmed" if reference else "cancelled",
        f": {reason}" if reason else "",
    )


def refund_payment(args: dict[str, Any], *, gateways: Gateways) -> None:
    """Void or refund what the gateway holds for the order; retried until the gateway answers."""
    gateway = gateways.get(args["method"])
    if gateway is None:
        raise PermanentJobError(f"payment method {args['method']!r} is not configured")
    try:
        outcome = gateway.refund(order_id=args["order_id"])
    except GatewayRejected as exc:
        raise PermanentJobError(f"refund of order {args['order_id']}: {exc.reason}") from exc
    except GatewayUnavailable as exc:
        raise RuntimeError(f"refund of order {args['order_id']} failed: {exc.reason}") from exc
    log.info("order %s payment %s", args["order_id"], outcome)


def capture_payment(args: dict[str, Any], *, gateways: Gateways) -> None:
    """Capture the authorized amount of a shipped order; retried until the gateway answers."""
    gateway = gateways.get(args["method"])
    if gateway is None:
        raise PermanentJobError(f"payment method {args['method']!r} is not configured")
    try:
        gateway.capture(order_id=args["order_id"], amount_cents=int(args["amount_cents"]))
    except GatewayRejected as exc:
        raise PermanentJobError(f"capture of order {args['order_id']}: {exc.reason}") from exc
    except GatewayUnavailable as exc:
        raise RuntimeError(f"capture of order {args['order_id']} failed: {exc.reason}") from exc


def sweep_stale_payments(
    *, db: Database, settings: Settings, gateways: Gateways, inventory: InventoryPort
) -> None:
    """Cancel orders still ``pending_payment`` past the deadline; their stock comes back."""
    deadline = utcnow() - timedelta(seconds=settings.payment_deadline_s)
    with db.reading() as session:
        stale = list(
            session.scalars(
                select(Order.id)
                .where(
                    Order.status == OrderStatus.PENDING_PAYMENT.value,
                    Order.created_at < deadline,
                )
                .order_by(Order.created_at)
                .limit(SWEEP_BATCH)
            )
        )
    expired = Settlement(reason="payment not completed before the deadline")
    for order_id in stale:
        log.warning("order %s passed the payment deadline; cancelling it", order_id)
        _settle(db, gateways, inventory, order_id, expired)


def _order(session: Session, order_id: uuid.UUID) -> Order:
    order = session.get(Order, order_id)
    if order is None:
        raise PermanentJobError(f"order {order_id} does not exist")
    return order
