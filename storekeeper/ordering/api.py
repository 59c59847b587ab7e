"""HTTP routes of the ordering context."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, status
from fastapi.responses import JSONResponse

from storekeeper.accounts import policy
from storekeeper.accounts.domain import BUYERS, ORDER_READERS_OF_ALL, STOCK_HANDLERS, Principal
from storekeeper.api.deps import DatabaseDep, provided, require
from storekeeper.api.errors import ErrorBody, responses
from storekeeper.ordering import placement, service
from storekeeper.ordering.domain import OrderStatus
from storekeeper.ordering.models import Order
from storekeeper.ordering.saga import Gateways
from storekeeper.ordering.schemas import (
    CancelRequest,
    OrderCreate,
    OrderPage,
    OrderRead,
)
from storekeeper.ordering.stock import InventoryPort

router = APIRouter(prefix="/orders", tags=["ordering"])
Buyer = Annotated[Principal, Depends(require(BUYERS))]
StockHandler = Annotated[Principal, Depends(require(STOCK_HANDLERS))]
GatewaysDep = Annotated[Gateways, Depends(provided("gateways"))]
InventoryDep = Annotated[InventoryPort, Depends(provided("inventory"))]
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Unique per intended order; a retry with the same key and body replays "
        "the first answer.",
    ),
]


def _visible(order: Order, principal: Principal) -> bool:
    return policy.may_see_order(principal, customer_id=order.customer_id)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderRead,
    responses={
        **responses(401, 403, 404, 422),
        409: {"model": ErrorBody, "description": "insufficient stock, or Idempotency-Key reused"},
    },
)
def place_order(
    body: OrderCreate,
    key: IdempotencyKey,
    who: Buyer,
    db: DatabaseDep,
    gateways: GatewaysDep,
    inventory: InventoryDep,
) -> JSONResponse:
    """Place an order: stock is reserved from the nearest warehouses and payment requested."""
    answer = placement.place_order(
        db=db,
        gateways=gateways,
        inventory=inventory,
        principal=who,
        order=body,
        key=key,
    )
    return JSONResponse(answer.body, status_code=answer.status_code)


@router.get("", response_model=OrderPage, responses=responses(401, 403, 422))
def list_orders(
    who: Buyer,
    db: DatabaseDep,
    status_: Annotated[OrderStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> OrderPage:
    """Orders newest first; customers see only their own."""
    own_only = None if who.has_role(ORDER_READERS_OF_ALL) else who.user_id
    with db.reading() as session:
        orders, next_cursor = service.list_(
            session, customer_id=own_only, status=status_, limit=limit, cursor=cursor
        )
        return OrderPage(items=[service.view(o) for o in orders], next_cursor=next_cursor)


@router.get("/{order_id}", response_model=OrderRead, responses=responses(401, 403, 404, 422))
def get_order(order_id: uuid.UUID, who: Buyer, db: DatabaseDep) -> OrderRead:
    """One order; a customer asking for someone else's gets 404."""
    with db.reading() as session:
        order = service.get_or_raise(session, order_id=order_id)
        if not _visible(order, who):
            raise service.OrderNotFound(f"no order {order_id}")
        return service.view(order)


@router.post(
    "/{order_id}/cancel", response_model=OrderRead, responses=responses(401, 403, 404, 409, 422)
)
def cancel_order(
    order_id: uuid.UUID,
    who: Buyer,
    db: DatabaseDep,
    gateways: GatewaysDep,
    inventory: InventoryDep,
    body: CancelRequest | None = None,
) -> OrderRead:
    """Cancel an order that has not shipped; its stock is available again at once, and a card
    payment is voided or refunded in the background."""
    with db.transaction() as session:
        order = service.get_for_update(session, order_id=order_id)
        if not _visible(order, who):
            raise service.OrderNotFound(f"no order {order_id}")
        service.cancel(
            session,
            order=order,
            reason=(body or CancelRequest()).reason,
            gateways=gateways,
            inventory=inventory,
        )
        return service.view(order)


@router.post(
    "/{order_id}/ship", response_model=OrderRead, responses=responses(401, 403, 404, 409, 422)
)
def ship_order(
    order_id: uuid.UUID,
    who: StockHandler,
    db: DatabaseDep,
    gateways: GatewaysDep,
    inventory: InventoryDep,
) -> OrderRead:
    """Ship a confirmed order: its reserved units become ``sale`` movements; a card payment is
    captured in the background."""
    with db.transaction() as session:
        order = service.get_for_update(session, order_id=order_id)
        policy.ensure_warehouses(who, {line.warehouse for line in order.lines})
        service.ship(
            session,
            order=order,
            actor_id=str(who.user_id),
            gateways=gateways,
            inventory=inventory,
        )
        return service.view(order)
