"""Placing an order once per Idempotency-Key: a retry gets the first answer, not a second order."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

from sqlalchemy.exc import IntegrityError

from storekeeper.accounts.domain import Principal
from storekeeper.db import Database
from storekeeper.inventory.domain import Point
from storekeeper.ordering import idempotency, service
from storekeeper.ordering.idempotency import StoredResponse
from storekeeper.ordering.schemas import OrderCreate
from storekeeper.ordering.stock import InventoryPort
from storekeeper.payments.gateway import PaymentGateway

_CREATED = int(HTTPStatus.CREATED)


def place_order(
    *,
    db: Database,
    gateways: Mapping[str, PaymentGateway],
    inventory: InventoryPort,
    principal: Principal,
    order: OrderCreate,
    key: str,
) -> StoredResponse:
    """Place ``order`` for ``principal`` and commit it, or answer again as first under ``key``.

    Convention: a function that commits takes ``db: Database`` and is its own unit of work, as
    this one is (a concurrent twin with the same key is found only when one of them commits);
    one that runs inside its caller's transaction takes a ``Session`` or ``Connection``.

    Returns the answer with its HTTP status: 201 and the new order, or what the first request
    with this key was answered. ``IdempotencyKeyReused`` (409) if the key came with another body.
    """
    request_hash = idempotency.fingerprint(order.model_dump_json().encode())
    try:
        with db.transaction() as session:
            stored = idempotency.lookup(
                session, user_id=principal.user_id, key=key, request_hash=request_hash
            )
            if stored is not None:
                return stored
            placed = service.place(
                session,
                customer_id=principal.user_id,
                lines=[(line.sku, line.qty) for line in order.lines],
                ship_to=Point(order.ship_to.lat, order.ship_to.lon) if order.ship_to else None,
                payment_method=order.payment.method,
                payment_token=order.payment.token,
                gateways=gateways,
                inventory=inventory,
            )
            answer = StoredResponse(_CREATED, placed.model_dump(mode="json"))
            idempotency.remember(
                session,
                user_id=principal.user_id,
                key=key,
                request_hash=request_hash,
                status_code=answer.status_code,
                body=answer.body,
            )
    except IntegrityError:
        # A concurrent request with the same key committed first: answer as it did.
        with db.reading() as session:
            stored = idempotency.lookup(
                session, user_id=principal.user_id, key=key, request_hash=request_hash
            )
        if stored is None:
            raise
        return stored
    return answer
