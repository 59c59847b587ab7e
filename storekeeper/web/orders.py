"""Console pages: orders — the list with its filters and CSV, one order with its allocation,
payment and history, shipping and cancelling, and the packing slip.

Each view calls what the matching API route calls (``storekeeper/ordering/api.py``) under the
same rules: staff and clerks read every order (``ORDER_READERS_OF_ALL``), anyone who may see an
order may cancel it, a clerk ships only orders served from their warehouses.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from storekeeper.accounts import policy, users
from storekeeper.accounts.domain import BUYERS, ORDER_READERS_OF_ALL, STOCK_HANDLERS, Principal
from storekeeper.api.deps import DatabaseDep, provided
from storekeeper.api.downloads import csv_response
from storekeeper.api.errors import status_for
from storekeeper.catalog import service as catalog_service
from storekeeper.errors import DomainError, NotFound
from storekeeper.inventory import reservations as inventory_reservations
from storekeeper.ordering import service
from storekeeper.ordering.domain import InvalidTransition, OrderStatus
from storekeeper.ordering.saga import Gateways
from storekeeper.ordering.schemas import CancelRequest, OrderRead
from storekeeper.ordering.stock import InventoryPort
from storekeeper.web.forms import Blank, Cursor, form_data, validate
from storekeeper.web.session import allowed
from storekeeper.web.templating import money, render

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Principal, Depends(allowed(STOCK_HANDLERS))]
Shipper = Annotated[Principal, Depends(allowed(STOCK_HANDLERS))]  # as POST /orders/{id}/ship
Canceller = Annotated[Principal, Depends(allowed(BUYERS))]  # as POST /orders/{id}/cancel
GatewaysDep = Annotated[Gateways, Depends(provided("gateways"))]
InventoryDep = Annotated[InventoryPort, Depends(provided("inventory"))]

PAGE_SIZE = 25
CSV_LIMIT = 10_000
"""At most this many orders in one CSV export (the filter narrows a larger one)."""

STATUS_WORDS = {
    OrderStatus.PENDING_PAYMENT: "Awaiting payment",
    OrderStatus.CONFIRMED: "Confirmed",
    OrderStatus.SHIPPED: "Shipped",
    OrderStatus.CANCELLED: "Cancelled",
}
PAYMENT_WORDS = {
    OrderStatus.PENDING_PAYMENT: "requested, not yet authorized",
    OrderStatus.CONFIRMED: "paid or authorized",
    OrderStatus.SHIPPED: "paid (a card payment is captured when the order ships)",
    OrderStatus.CANCELLED: "none kept (a card payment is voided or refunded)",
}
EVENT_WORDS = {
    "order.placed": "Placed",
    "order.confirmed": "Payment confirmed",
    "order.shipped": "Shipped",
    "order.cancelled": "Cancelled",
}
HOLD_WORDS = {"active": "held", "consumed": "shipped", "released": "given back"}


StatusQuery = Annotated[OrderStatus | None, Blank, Query(alias="status")]
DateQuery = Annotated[date | None, Blank, Query()]
CustomerQuery = Annotated[str, Query(max_length=254)]
CursorQuery = Annotated[Cursor, Blank, Query()]
FormatQuery = Annotated[Literal["html", "csv"], Query(alias="format")]
DoneQuery = Annotated[Literal["shipped", "cancelled"] | None, Blank, Query()]


@dataclass(frozen=True)
class OrderFilter:
    """The list's filter as the query string carries it."""

    status: OrderStatus | None
    placed_from: date | None
    placed_to: date | None
    customer: str

    def query(self, **extra: str) -> str:
        """The query string of this filter (blank fields left out), plus ``extra``."""
        pairs = {
            "status": self.status.value if self.status else "",
            "placed_from": self.placed_from.isoformat() if self.placed_from else "",
            "placed_to": self.placed_to.isoformat() if self.placed_to else "",
            "customer": self.customer,
            **extra,
        }
        return urlencode({k: v for k, v in pairs.items() if v})


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _customer_id(session: Session, customer: str) -> tuple[uuid.UUID | None, str | None]:
    """The customer a filter names by id or e-mail, or the reason it names nobody."""
    if not customer:
        return None, None
    try:
        return uuid.UUID(customer), None
    except ValueError:
        pass
    if "@" not in customer:
        return None, "enter a customer's e-mail address or account id"
    found = users.id_by_email(session, email=customer)
    return (found, None) if found else (None, f"no account has the e-mail {customer}")


def _list(
    session: Session,
    principal: Principal,
    flt: OrderFilter,
    customer_id: uuid.UUID | None,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[OrderRead], str | None]:
    # The API's rule: readers of all orders see every order, anyone else only their own.
    own_only = None if principal.has_role(ORDER_READERS_OF_ALL) else principal.user_id
    if own_only is not None and customer_id not in (None, own_only):
        return [], None
    orders, next_cursor = service.list_(
        session,
        customer_id=own_only or customer_id,
        status=flt.status,
        limit=limit,
        cursor=cursor,
        placed_from=_day_start(flt.placed_from) if flt.placed_from else None,
        placed_before=_day_start(flt.placed_to + timedelta(days=1)) if flt.placed_to else None,
    )
    return [service.view(o) for o in orders], next_cursor


def _emails(session: Session, orders: Sequence[OrderRead]) -> dict[uuid.UUID, str]:
    return users.emails_by_id(session, user_ids={o.customer_id for o in orders})


@router.get("/orders")
def index(
    request: Request,
    principal: Viewer,
    db: DatabaseDep,
    status: StatusQuery = None,
    placed_from: DateQuery = None,
    placed_to: DateQuery = None,
    customer: CustomerQuery = "",
    cursor: CursorQuery = None,
    format_: FormatQuery = "html",
) -> Response:
    """Orders newest first, filtered by status, placing date and customer; or their CSV."""
    flt = OrderFilter(status, placed_from, placed_to, customer.strip())
    errors: dict[str, str] = {}
    if placed_from and placed_to and placed_to < placed_from:
        errors["placed_to"] = "the last day must not be before the first day"
    orders: list[OrderRead] = []
    next_cursor: str | None = None
    with db.reading() as session:
        customer_id, problem = _customer_id(session, flt.customer)
        if problem:
            errors["customer"] = problem
        if format_ == "csv" and not errors:
            while True:
                page, cursor = _list(
                    session, principal, flt, customer_id, limit=service.MAX_PAGE, cursor=cursor
                )
                orders.extend(page)
                if cursor is None or len(orders) >= CSV_LIMIT:
                    break
            return _csv(orders[:CSV_LIMIT], _emails(session, orders))
        if not errors:
            orders, next_cursor = _list(
                session, principal, flt, customer_id, limit=PAGE_SIZE, cursor=cursor
            )
        emails = _emails(session, orders)
    here = flt.query(**({"cursor": cursor} if cursor else {}))
    return render(
        request,
        "orders/index.html",
        principal,
        status_code=422 if errors else 200,
        # htmx pushes this address, not the form's with its blank fields.
        headers={"HX-Push-Url": f"/orders?{here}" if here else "/orders"},
        title="Orders",
        flt=flt,
        errors=errors,
        orders=orders,
        emails=emails,
        statuses=STATUS_WORDS,
        paged=cursor is not None,
        next_url=f"/orders?{flt.query(cursor=next_cursor)}" if next_cursor else None,
        first_url=f"/orders?{flt.query()}",
        csv_url=f"/orders?{flt.query(format='csv')}",
    )


def _csv(orders: Sequence[OrderRead], emails: dict[uuid.UUID, str]) -> Response:
    return csv_response(
        "orders.csv",
        [
            "order_id",
            "placed_at",
            "status",
            "customer_id",
            "customer_email",
            "lines",
            "units",
            "warehouses",
            "total",
            "currency",
            "payment_method",
            "payment_reference",
        ],
        (
            [
                str(o.id),
                o.created_at.isoformat(),
                o.status.value,
                str(o.customer_id),
                emails.get(o.customer_id, ""),
                len(o.lines),
                sum(line.qty for line in o.lines),
                " ".join(sorted({line.warehouse for line in o.lines})),
                f"{o.total_cents / 100:.2f}",
                o.currency,
                o.payment.method,
                o.payment.reference or "",
            ]
            for o in orders
        ),
    )


def _visible_order(session: Session, principal: Principal, order_id: uuid.UUID) -> OrderRead:
    order = service.get_or_raise(session, order_id=order_id)
    if not policy.may_see_order(principal, customer_id=order.customer_id):
        raise service.OrderNotFound(f"no order {order_id}")
    return service.view(order)


def _may_ship(principal: Principal, order: OrderRead) -> str | None:
    """Why ``principal`` may not ship ``order`` now (None: they may)."""
    try:
        policy.ensure_warehouses(principal, {line.warehouse for line in order.lines})
    except DomainError as exc:
        return exc.detail
    return None


_REFUSALS = {
    ("ship", OrderStatus.PENDING_PAYMENT): "This order is not paid yet: it can ship once its "
    "payment is confirmed.",
    ("ship", OrderStatus.SHIPPED): "This order has shipped already.",
    ("ship", OrderStatus.CANCELLED): "This order was cancelled: it cannot ship.",
    ("cancel", OrderStatus.SHIPPED): "This order has shipped: it can no longer be cancelled.",
    ("cancel", OrderStatus.CANCELLED): "This order was cancelled already.",
}


def _in_words(exc: DomainError, action: str, order: OrderRead) -> str:
    """A refused ship or cancel, said for the person at the console (the order as it is now)."""
    if isinstance(exc, InvalidTransition):
        return _REFUSALS.get((action, order.status), exc.detail)
    return exc.detail


def _detail(
    request: Request,
    session: Session,
    principal: Principal,
    order_id: uuid.UUID,
    *,
    status_code: int = 200,
    done: str | None = None,
    failure: tuple[str, DomainError] | None = None,
    reason: str = "",
    reason_error: str | None = None,
) -> Response:
    order = _visible_order(session, principal, order_id)
    holds = inventory_reservations.reservations_of(session, ref=service.reservation_ref(order_id))
    return render(
        request,
        "orders/detail.html",
        principal,
        status_code=status_code,
        title=f"Order {str(order.id)[:8]}",
        order=order,
        email=_emails(session, [order]).get(order.customer_id),
        holds=[(allocation, HOLD_WORDS.get(state, state)) for allocation, state in holds],
        history=service.history(session, order_id=order_id),
        statuses=STATUS_WORDS,
        events=EVENT_WORDS,
        payment_words=PAYMENT_WORDS[order.status],
        can_ship=order.status is OrderStatus.CONFIRMED,
        ship_refusal=_may_ship(principal, order),
        can_cancel=order.status in (OrderStatus.PENDING_PAYMENT, OrderStatus.CONFIRMED),
        done=done if done == order.status.value else None,
        error=_in_words(failure[1], failure[0], order) if failure else None,
        reason=reason,
        reason_error=reason_error,
    )


@router.get("/orders/{order_id}")
def detail(
    request: Request,
    order_id: uuid.UUID,
    principal: Viewer,
    db: DatabaseDep,
    done: DoneQuery = None,
) -> Response:
    """One order: lines, totals, where its units are held, payment, status history, actions."""
    with db.reading() as session:
        return _detail(request, session, principal, order_id, done=done)


@router.post("/orders/{order_id}/ship")
def ship(
    request: Request,
    order_id: uuid.UUID,
    principal: Shipper,
    db: DatabaseDep,
    gateways: GatewaysDep,
    inventory: InventoryDep,
) -> Response:
    """Ship a confirmed order, as ``POST /api/v1/orders/{id}/ship``; refusals in words."""
    try:
        with db.transaction() as session:
            order = service.get_for_update(session, order_id=order_id)
            policy.ensure_warehouses(principal, {line.warehouse for line in order.lines})
            service.ship(
                session,
                order=order,
                actor_id=str(principal.user_id),
                gateways=gateways,
                inventory=inventory,
            )
    except NotFound:
        raise
    except DomainError as exc:
        with db.reading() as session:
            return _detail(
                request,
                session,
                principal,
                order_id,
                status_code=status_for(exc),
                failure=("ship", exc),
            )
    return RedirectResponse(f"/orders/{order_id}?done=shipped", status_code=303)


@router.post("/orders/{order_id}/cancel")
async def cancel(
    request: Request,
    order_id: uuid.UUID,
    principal: Canceller,
    db: DatabaseDep,
    gateways: GatewaysDep,
    inventory: InventoryDep,
) -> Response:
    """Cancel an unshipped order, as ``POST /api/v1/orders/{id}/cancel``; refusals in words."""
    fields = await form_data(request)
    body, problems = validate(
        CancelRequest, {"reason": fields["reason"]} if "reason" in fields else {}
    )
    if body is None:
        with db.reading() as session:
            return _detail(
                request,
                session,
                principal,
                order_id,
                status_code=422,
                reason=fields.get("reason", ""),
                reason_error=problems.get("reason", "not a valid reason"),
            )
    try:
        with db.transaction() as session:
            order = service.get_for_update(session, order_id=order_id)
            if not policy.may_see_order(principal, customer_id=order.customer_id):
                raise service.OrderNotFound(f"no order {order_id}")
            service.cancel(
                session, order=order, reason=body.reason, gateways=gateways, inventory=inventory
            )
    except NotFound:
        raise
    except DomainError as exc:
        with db.reading() as session:
            return _detail(
                request,
                session,
                principal,
                order_id,
                status_code=status_for(exc),
                failure=("cancel", exc),
                reason=body.reason if "reason" in fields else "",
            )
    return RedirectResponse(f"/orders/{order_id}?done=cancelled", status_code=303)


@router.get("/orders/{order_id}/packing-slip")
def packing_slip(
    request: Request, order_id: uuid.UUID, principal: Viewer, db: DatabaseDep
) -> Response:
    """A printable list of what to pick, warehouse by warehouse."""
    with db.reading() as session:
        order = _visible_order(session, principal, order_id)
        names: dict[str, str] = {}
        for sku in sorted({line.sku for line in order.lines}):
            try:
                names[sku] = catalog_service.get_or_raise(session, sku=sku).name
            except NotFound:
                names[sku] = ""
        email = _emails(session, [order]).get(order.customer_id)
    by_warehouse: dict[str, list[tuple[str, str, int]]] = {}
    for line in sorted(order.lines, key=lambda ln: (ln.warehouse, ln.sku)):
        by_warehouse.setdefault(line.warehouse, []).append((line.sku, names[line.sku], line.qty))
    return render(
        request,
        "orders/packing_slip.html",
        principal,
        title=f"Packing slip {str(order.id)[:8]}",
        order=order,
        email=email,
        by_warehouse=by_warehouse,
        units=sum(line.qty for line in order.lines),
        total=money(order.total_cents, order.currency),
        statuses=STATUS_WORDS,
    )
