"""The payment saga of DESIGN.md section 4, steps 4-6, for gateways that answer over the network.

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
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storekeeper.db import utcnow
from storekeeper.ordering import service
from storekeeper.ordering.domain import OrderStatus
from storekeeper.ordering.models import Order
from storekeeper.payments.gateway import AuthorizationStatus, GatewayRejected, GatewayUnavailable
from storekeeper.tasks.background import Periodic
from storekeeper.tasks.queue import PermanentJobError

if TYPE_CHECKING:
    from storekeeper.bootstrap import Container

log = logging.getLogger(__name__)
SWEEP_BATCH = 100


def register(container: Container) -> None:
    """Add the saga's jobs and its sweeper to the container."""
    container.jobs.register(service.COLLECT_PAYMENT, collect_payment)
    container.jobs.register(service.REFUND_PAYMENT, refund_payment)
    container.jobs.register(service.CAPTURE_PAYMENT, capture_payment)
    container.periodic.append(
        Periodic(
            "ordering.sweep_stale_payments",
            # Often enough that an order never waits much past its deadline.
            every_s=max(0.5, min(5.0, container.settings.payment_deadline_s / 4)),
            run=sweep_stale_payments,
        )
    )


def collect_payment(container: Container, args: dict[str, Any]) -> None:
    """Ask the gateway to authorize the order's total, then confirm or cancel the order."""
    order_id = uuid.UUID(args["order_id"])
    with container.db.reading() as session:
        order = _order(session, order_id)
        if order.status != OrderStatus.PENDING_PAYMENT:
            return  # cancelled (by the customer or the sweeper) before we got to it
        method, amount, currency = order.payment_method, order.total_cents, order.currency
    gateway = container.payment_gateways.get(method)
    if gateway is None:
        _settle(container, order_id, reason=f"payment method {method!r} is not configured")
        return
    try:
        answer = gateway.authorize(
            order_id=str(order_id), amount_cents=amount, currency=currency, token=args["token"]
        )
    except GatewayRejected as exc:
        _settle(container, order_id, reason=f"payment gateway refused the request: {exc.reason}")
        return
    except GatewayUnavailable as exc:
        _settle(container, order_id, reason=f"payment gateway unavailable: {exc.reason}")
        return
    if answer.status is AuthorizationStatus.AUTHORIZED:
        _settle(container, order_id, reference=answer.reference)
    elif answer.status is AuthorizationStatus.DECLINED:
        _settle(container, order_id, reason=f"payment declined: {answer.reason}")
    else:  # the gateway is still deciding: ask again later (the sweeper bounds the wait)
        raise RuntimeError(f"authorization of order {order_id} is still pending")


def _settle(
    container: Container, order_id: uuid.UUID, *, reference: str | None = None, reason: str = ""
) -> None:
    """Confirm (with ``reference``) or cancel (with ``reason``) an order still awaiting payment."""
    with container.db.transaction() as session:
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
                session,
                order=order,
                reason=reason,
                gateways=container.payment_gateways,
                inventory=container.inventory,
            )
    log.info(
        "order %s %s%s",
        order_id,
        "confirmed" if reference else "cancelled",
        f": {reason}" if reason else "",
    )


def refund_payment(container: Container, args: dict[str, Any]) -> None:
    """Void or refund what the gateway holds for the order; retried until the gateway answers."""
    gateway = container.payment_gateways.get(args["method"])
    if gateway is None:
        raise PermanentJobError(f"payment method {args['method']!r} is not configured")
    try:
        outcome = gateway.refund(order_id=args["order_id"])
    except GatewayRejected as exc:
        raise PermanentJobError(f"refund of order {args['order_id']}: {exc.reason}") from exc
    except GatewayUnavailable as exc:
        raise RuntimeError(f"refund of order {args['order_id']} failed: {exc.reason}") from exc
    log.info("order %s payment %s", args["order_id"], outcome)


def capture_payment(container: Container, args: dict[str, Any]) -> None:
    """Capture the authorized amount of a shipped order; retried until the gateway answers."""
    gateway = container.payment_gateways.get(args["method"])
    if gateway is None:
        raise PermanentJobError(f"payment method {args['method']!r} is not configured")
    try:
        gateway.capture(order_id=args["order_id"], amount_cents=int(args["amount_cents"]))
    except GatewayRejected as exc:
        raise PermanentJobError(f"capture of order {args['order_id']}: {exc.reason}") from exc
    except GatewayUnavailable as exc:
        raise RuntimeError(f"capture of order {args['order_id']} failed: {exc.reason}") from exc


def sweep_stale_payments(container: Container) -> None:
    """Cancel orders still ``pending_payment`` past the deadline; their stock comes back."""
    deadline = utcnow() - timedelta(seconds=container.settings.payment_deadline_s)
    with container.db.reading() as session:
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
    for order_id in stale:
        log.warning("order %s passed the payment deadline; cancelling it", order_id)
        _settle(container, order_id, reason="payment not completed before the deadline")


def _order(session: Session, order_id: uuid.UUID) -> Order:
    order = session.get(Order, order_id)
    if order is None:
        raise PermanentJobError(f"order {order_id} does not exist")
    return order
