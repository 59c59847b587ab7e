"""Use cases of the ordering context: place, pay, cancel, ship, and read orders.

Placing an order is the first half of the saga in docs/design.md section 4: reserve stock, write the
order and its ``order.placed`` event in one transaction. A gateway that answers at once without
a network (``manual``) confirms the order in that same transaction; a remote one (``card``) gets
a ``collect_payment`` job queued in it, and ``ordering.saga`` settles the order later.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TypeVar, cast

from sqlalchemy import Table, func, insert, literal, select, tuple_
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from storekeeper.catalog import service as catalog_service
from storekeeper.db import utcnow
from storekeeper.errors import InvalidRequest, NotFound
from storekeeper.events import outbox
from storekeeper.events.outbox import Event
from storekeeper.inventory.domain import Point, merge_lines
from storekeeper.inventory.schemas import Location
from storekeeper.observability import metrics
from storekeeper.observability.counting import count_on_commit
from storekeeper.ordering.domain import OrderStatus, ensure_transition, order_total
from storekeeper.ordering.events import (
    OrderCancelled,
    OrderConfirmed,
    OrderEvent,
    OrderPlaced,
    OrderShipped,
)
from storekeeper.ordering.models import Order, OrderLine
from storekeeper.ordering.schemas import OrderLineRead, OrderRead, PaymentRead
from storekeeper.ordering.stock import InventoryPort
from storekeeper.payments.gateway import AuthorizationStatus, PaymentGateway
from storekeeper.tasks import queue

MAX_PAGE = 100
COLLECT_PAYMENT = "ordering.collect_payment"
REFUND_PAYMENT = "ordering.refund_payment"
CAPTURE_PAYMENT = "ordering.capture_payment"
_E = TypeVar("_E", bound=OrderEvent)
_order = cast(Table, Order.__table__)
_order_line = cast(Table, OrderLine.__table__)


class OrderNotFound(NotFound):
    """No such order, or not one the caller may see."""

    code = "order_not_found"


class PaymentMethodUnavailable(InvalidRequest):
    """The payment method is not configured on this server."""

    code = "payment_method_unavailable"


def reservation_ref(order_id: uuid.UUID) -> str:
    """The reference under which inventory holds this order's stock."""
    return f"order:{order_id}"


def _event(kind: type[_E], order: Order | OrderRead) -> _E:
    return kind(
        order_id=str(order.id),
        customer_id=str(order.customer_id),
        status=str(order.status),
        total_cents=order.total_cents,
        currency=order.currency,
    )


def view(order: Order) -> OrderRead:
    """The API view of a stored order."""
    ship_to = None
    if order.ship_to_lat is not None and order.ship_to_lon is not None:
        ship_to = Location(lat=order.ship_to_lat, lon=order.ship_to_lon)
    return OrderRead(
        id=order.id,
        status=OrderStatus(order.status),
        customer_id=order.customer_id,
        lines=[OrderLineRead.model_validate(line) for line in order.lines],
        total_cents=order.total_cents,
        currency=order.currency,
        ship_to=ship_to,
        payment=PaymentRead(method=order.payment_method, reference=order.payment_reference),
        cancel_reason=order.cancel_reason,
        created_at=order.created_at,
        updated_at=order.updated_at,
    )


def place(
    session: Session,
    *,
    customer_id: uuid.UUID,
    lines: Sequence[tuple[str, int]],
    ship_to: Point | None,
    payment_method: str,
    payment_token: str,
    gateways: Mapping[str, PaymentGateway],
    inventory: InventoryPort,
) -> OrderRead:
    """Reserve stock for ``lines`` and record the order; pay at once if the gateway can.

    The order is written with Core INSERTs of its final rows rather than through ORM objects:
    this is the hottest write path, and the ORM's unit of work measured as most of its cost
    (bench W2).
    """
    gateway = gateways.get(payment_method)
    if gateway is None:
        raise PaymentMethodUnavailable(
            f"payment method {payment_method!r} is not available on this server "
            f"(available: {', '.join(sorted(gateways))})"
        )
    if gateway.remote and not payment_token:
        raise InvalidRequest(
            f"payment method {payment_method!r} needs a payment token",
            code="payment_token_required",
        )
    wanted = merge_lines(lines)
    quotes = catalog_service.quote(session, skus=wanted)
    currencies = {q.currency for q in quotes.values()}
    if len(currencies) > 1:
        raise InvalidRequest(
            f"an order is paid in one currency; these SKUs are priced in {sorted(currencies)}",
            code="mixed_currencies",
        )
    # Before anything is reserved: a total beyond BIGINT is refused, not an overflow (SQLite).
    order_total((qty, quotes[sku].price_cents) for sku, qty in wanted.items())
    order_id = uuid.uuid4()
    ref = reservation_ref(order_id)
    allocations = inventory.reserve(session, ref=ref, lines=wanted, ship_to=ship_to)
    now = utcnow()
    order = OrderRead(
        id=order_id,
        status=OrderStatus.PENDING_PAYMENT,
        customer_id=customer_id,
        lines=[
            OrderLineRead(
                sku=a.sku,
                qty=a.qty,
                warehouse=a.warehouse,
                unit_price_cents=quotes[a.sku].price_cents,
            )
            for a in allocations
        ],
        total_cents=order_total((a.qty, quotes[a.sku].price_cents) for a in allocations),
        currency=currencies.pop(),
        ship_to=Location(lat=ship_to.lat, lon=ship_to.lon) if ship_to else None,
        payment=PaymentRead(method=payment_method, reference=None),
        cancel_reason=None,
        created_at=now,
        updated_at=now,
    )
    events: list[Event] = [_event(OrderPlaced, order)]
    if gateway.remote:
        _write(session, order, events)
        queue.enqueue(
            session,
            COLLECT_PAYMENT,
            {"order_id": str(order_id), "token": payment_token},
            key=f"collect:{order_id}",
        )
        return order
    authorization = gateway.authorize(
        order_id=str(order_id),
        amount_cents=order.total_cents,
        currency=order.currency,
        token=payment_token,
    )
    if authorization.status is AuthorizationStatus.AUTHORIZED:
        ensure_transition(order.status, OrderStatus.CONFIRMED)
        order.status = OrderStatus.CONFIRMED
        order.payment.reference = authorization.reference
        events.append(_event(OrderConfirmed, order))
    elif authorization.status is AuthorizationStatus.DECLINED:
        ensure_transition(order.status, OrderStatus.CANCELLED)
        order.status = OrderStatus.CANCELLED
        order.cancel_reason = f"payment declined: {authorization.reason}"
        inventory.release(session, ref=ref)
        events.append(
            dataclasses.replace(_event(OrderCancelled, order), reason=order.cancel_reason)
        )
    _write(session, order, events)
    return order


def _write(session: Session, order: OrderRead, events: list[Event]) -> None:
    connection = session.connection()
    connection.execute(insert(_order), [_order_row(order)])
    count_on_commit(session, metrics.ORDERS.labels(order.status.value))
    connection.execute(
        insert(_order_line), [{"order_id": order.id, **ln.model_dump()} for ln in order.lines]
    )
    outbox.record(session, *events)


def _order_row(order: OrderRead) -> dict[str, object]:
    return {
        "id": order.id,
        "customer_id": order.customer_id,
        "status": order.status.value,
        "currency": order.currency,
        "total_cents": order.total_cents,
        "ship_to_lat": order.ship_to.lat if order.ship_to else None,
        "ship_to_lon": order.ship_to.lon if order.ship_to else None,
        "payment_method": order.payment.method,
        "payment_reference": order.payment.reference,
        "cancel_reason": order.cancel_reason,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        # Confirmed or cancelled by the payment in the placing transaction itself.
        "confirmed_at": order.created_at if order.status is OrderStatus.CONFIRMED else None,
        "cancelled_at": order.created_at if order.status is OrderStatus.CANCELLED else None,
    }


def _transition(session: Session, order: Order, target: OrderStatus, reason: str = "") -> None:
    ensure_transition(OrderStatus(order.status), target)
    order.status = target.value
    order.updated_at = utcnow()
    count_on_commit(session, metrics.ORDERS.labels(target.value))
    if target is OrderStatus.CONFIRMED:
        order.confirmed_at = order.updated_at
        outbox.record(session, _event(OrderConfirmed, order))
    elif target is OrderStatus.CANCELLED:
        order.cancelled_at = order.updated_at
        outbox.record(session, dataclasses.replace(_event(OrderCancelled, order), reason=reason))
    else:
        order.shipped_at = order.updated_at
        outbox.record(session, _event(OrderShipped, order))


def get_for_update(session: Session, *, order_id: uuid.UUID) -> Order:
    """The order, locked against concurrent status changes until the transaction ends."""
    order = session.scalar(select(Order).where(Order.id == order_id).with_for_update())
    if order is None:
        raise OrderNotFound(f"no order {order_id}")
    return order


def existing_ids(session: Session, *, order_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Which of ``order_ids`` are orders."""
    if not order_ids:
        return set()
    return set(session.scalars(select(Order.id).where(Order.id.in_(order_ids))))


def get_or_raise(session: Session, *, order_id: uuid.UUID) -> Order:
    """The order with ``order_id``."""
    order = session.get(Order, order_id)
    if order is None:
        raise OrderNotFound(f"no order {order_id}")
    return order


def confirm(session: Session, *, order: Order, reference: str) -> Order:
    """Payment authorized: the order will ship."""
    _transition(session, order, OrderStatus.CONFIRMED)
    order.payment_reference = reference
    return order


def cancel(
    session: Session,
    *,
    order: Order,
    reason: str,
    gateways: Mapping[str, PaymentGateway],
    inventory: InventoryPort,
) -> Order:
    """Cancel an unshipped order: release its stock at once, give back any payment later."""
    _transition(session, order, OrderStatus.CANCELLED, reason)
    order.cancel_reason = reason
    inventory.release(session, ref=reservation_ref(order.id))
    if _is_remote(order, gateways):
        request_refund(session, order)
    return order


def request_refund(session: Session, order: Order) -> None:
    """Queue the job that voids or refunds whatever the gateway holds for ``order``."""
    queue.enqueue(
        session,
        REFUND_PAYMENT,
        {"order_id": str(order.id), "method": order.payment_method},
        key=f"refund:{order.id}",
        max_attempts=30,
    )


def ship(
    session: Session,
    *,
    order: Order,
    actor_id: str | None,
    gateways: Mapping[str, PaymentGateway],
    inventory: InventoryPort,
) -> Order:
    """Turn a confirmed order's reservation into sales; capture a card payment later."""
    _transition(session, order, OrderStatus.SHIPPED)
    inventory.fulfil(session, ref=reservation_ref(order.id), actor_id=actor_id)
    if _is_remote(order, gateways):
        queue.enqueue(
            session,
            CAPTURE_PAYMENT,
            {
                "order_id": str(order.id),
                "method": order.payment_method,
                "amount_cents": order.total_cents,
            },
            key=f"capture:{order.id}",
            max_attempts=30,
        )
    return order


def _is_remote(order: Order, gateways: Mapping[str, PaymentGateway]) -> bool:
    # A method no longer configured is treated as remote: its job fails visibly in
    # ``storekeeper jobs status`` instead of a payment being forgotten.
    gateway = gateways.get(order.payment_method)
    return gateway is None or gateway.remote


def list_(
    session: Session,
    *,
    customer_id: uuid.UUID | None,
    status: OrderStatus | None,
    limit: int,
    cursor: str | None,
    placed_from: datetime | None = None,
    placed_before: datetime | None = None,
) -> tuple[list[Order], str | None]:
    """Orders newest first, optionally only one customer's, one status, or placed in
    ``[placed_from, placed_before)``; keyset-paged on (placed, id)."""
    query = select(Order).order_by(Order.created_at.desc(), Order.id.desc())
    if customer_id is not None:
        query = query.where(Order.customer_id == customer_id)
    if status is not None:
        query = query.where(Order.status == status.value)
    if placed_from is not None:
        query = query.where(Order.created_at >= literal(placed_from, Order.created_at.type))
    if placed_before is not None:
        query = query.where(Order.created_at < literal(placed_before, Order.created_at.type))
    if cursor:
        created_at, order_id = _decode_cursor(cursor)
        query = query.where(
            tuple_(Order.created_at, Order.id)
            < tuple_(literal(created_at, Order.created_at.type), literal(order_id, Order.id.type))
        )
    limit = max(1, min(limit, MAX_PAGE))
    rows = list(session.scalars(query.limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = _encode_cursor(last.created_at, last.id)
    return rows[:limit], next_cursor


def _encode_cursor(created_at: datetime, order_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{order_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, order_id = raw.split("|")
        moment = datetime.fromisoformat(created_at)
        if moment.tzinfo is None:  # we only ever issue aware cursors; naive ones cannot be bound
            raise ValueError("naive timestamp in cursor")
        return moment, uuid.UUID(order_id)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequest("malformed cursor", code="invalid_cursor") from exc


@dataclasses.dataclass(frozen=True, slots=True)
class StatusChange:
    """One step of an order's life and the event that announced it."""

    event: str
    status: OrderStatus
    at: datetime | None
    reason: str


def history(session: Session, *, order_id: uuid.UUID) -> list[StatusChange]:
    """The order's status changes oldest first, from the times kept on its row."""
    order = get_or_raise(session, order_id=order_id)
    steps = [StatusChange(OrderPlaced.type, OrderStatus.PENDING_PAYMENT, order.created_at, "")]
    for event, status, at in (
        (OrderConfirmed.type, OrderStatus.CONFIRMED, order.confirmed_at),
        (OrderCancelled.type, OrderStatus.CANCELLED, order.cancelled_at),
        (OrderShipped.type, OrderStatus.SHIPPED, order.shipped_at),
    ):
        if at is not None:
            reason = order.cancel_reason or "" if status is OrderStatus.CANCELLED else ""
            steps.append(StatusChange(event, status, at, reason))
    # Stable: a step taken in the placing transaction keeps its place after "placed".
    return sorted(steps, key=lambda step: step.at or order.created_at)


def count_by_status(connection: Connection) -> dict[str, int]:
    """How many orders are in each status (for the metrics gauge)."""
    rows = connection.execute(select(_order.c.status, func.count()).group_by(_order.c.status))
    return {status: count for status, count in rows.all()}


def line_prices(session: Session, *, ref: str) -> dict[tuple[str, str], tuple[int, str]]:
    """``{(sku, warehouse): (unit_price_cents, currency)}`` of the order whose reservation
    reference is ``ref`` (``order:<id>``), or ``{}`` for a reference that names no order: what
    the customer paid per unit, for a reader of the ledger's sales (the reporting context)."""
    prefix = reservation_ref(uuid.UUID(int=0)).split(":", 1)[0] + ":"
    try:
        order_id = uuid.UUID(ref.removeprefix(prefix)) if ref.startswith(prefix) else None
    except ValueError:
        order_id = None
    if order_id is None:
        return {}
    rows = session.execute(
        select(
            _order_line.c.sku,
            _order_line.c.warehouse,
            _order_line.c.unit_price_cents,
            _order.c.currency,
        )
        .join(_order, _order.c.id == _order_line.c.order_id)
        .where(_order_line.c.order_id == order_id)
    )
    return {(row.sku, row.warehouse): (row.unit_price_cents, row.currency) for row in rows}
