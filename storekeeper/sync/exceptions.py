"""Sync exceptions: offline stock work the server could not apply in full, for a manager.

A manager settles one in one of three ways (:class:`Resolution`), each in one transaction with
the stock movement it implies (reference ``sync-exception:<id>``):

- ``accept_loss``: the shortfall is accepted as it stands; stock is not changed.
- ``correct_count``: the shelf was counted; on-hand is set to the count (a ``count`` movement).
- ``attach_receipt``: the units came from a delivery booked later (a ``receipt`` movement of the
  same SKU and warehouse); the shortfall is taken off now as a ``sale``, and a receipt covers
  at most its own units across the exceptions attached to it.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Collection, Sequence

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from storekeeper.accounts import policy
from storekeeper.accounts.domain import STAFF, Principal
from storekeeper.db import utcnow
from storekeeper.errors import Conflict, InvalidRequest, NotFound
from storekeeper.events import outbox
from storekeeper.ids import parse_id
from storekeeper.inventory import history as inventory_history
from storekeeper.inventory import ledger as inventory_ledger
from storekeeper.sync.events import ExceptionResolved
from storekeeper.sync.models import PushedMutation, SyncException
from storekeeper.sync.schemas import ExceptionRead

MAX_PAGE = 200


class Resolution(enum.StrEnum):
    """How a manager settled an exception."""

    ACCEPT_LOSS = "accept_loss"
    CORRECT_COUNT = "correct_count"
    ATTACH_RECEIPT = "attach_receipt"


class ExceptionNotFound(NotFound):
    """No sync exception has that id."""

    code = "exception_not_found"


class AlreadyResolved(Conflict):
    """The sync exception was resolved before."""

    code = "already_resolved"


class NotAReceipt(InvalidRequest):
    """The movement to attach is not a receipt of the exception's SKU in its warehouse."""

    code = "not_a_receipt"


class ReceiptUsedUp(Conflict):
    """The receipt's units are already taken by the exceptions attached to it."""

    code = "receipt_used_up"


def list_(
    session: Session,
    *,
    principal: Principal,
    status: str | None,
    warehouse: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[SyncException], str | None]:
    """Exceptions oldest first: managers and admins see all, clerks their warehouses'."""
    query = select(SyncException).order_by(SyncException.id)
    if warehouse is not None:
        policy.ensure_warehouses(principal, [warehouse])
        query = query.where(SyncException.warehouse_code == warehouse)
    elif not principal.has_role(STAFF):
        policy.ensure_warehouses(principal, principal.warehouses)
        query = query.where(SyncException.warehouse_code.in_(sorted(principal.warehouses)))
    if status is not None:
        query = query.where(SyncException.status == status)
    if cursor is not None:
        after = parse_id(cursor)
        if after is None:
            raise InvalidRequest("malformed cursor", code="invalid_cursor")
        query = query.where(SyncException.id > after)
    limit = max(1, min(limit, MAX_PAGE))
    items = list(session.scalars(query.limit(limit + 1)))
    next_cursor = str(items[limit - 1].id) if len(items) > limit else None
    return items[:limit], next_cursor


def get(session: Session, *, principal: Principal, exception_id: int) -> SyncException:
    """One exception, under the rule of :func:`list_` (a clerk's warehouses only)."""
    exception = session.get(SyncException, exception_id)
    if exception is None:
        raise ExceptionNotFound(f"no sync exception {exception_id}")
    policy.ensure_warehouses(principal, [exception.warehouse_code])
    return exception


def views(session: Session, items: Sequence[SyncException]) -> list[ExceptionRead]:
    """The API view of ``items``, with what the replica had seen and the server's on-hand then."""
    pushed = {
        row.id: row
        for row in session.execute(
            select(PushedMutation.id, PushedMutation.data, PushedMutation.detail).where(
                PushedMutation.id.in_([item.mutation_id for item in items])
            )
        )
    }
    answer = []
    for item in items:
        row = pushed.get(item.mutation_id)
        data = row.data if row is not None and isinstance(row.data, dict) else {}
        detail = row.detail if row is not None and isinstance(row.detail, dict) else {}
        seen, after = data.get("seen_on_hand"), detail.get("on_hand")
        answer.append(
            ExceptionRead.model_validate(item).model_copy(
                update={
                    "seen_on_hand": seen if isinstance(seen, int) else None,
                    "server_on_hand": after if isinstance(after, int) else None,
                }
            )
        )
    return answer


def resolve(
    session: Session,
    *,
    exception_id: int,
    note: str,
    actor_id: uuid.UUID,
    resolution: Resolution = Resolution.ACCEPT_LOSS,
    counted: int | None = None,
    receipt_id: int | None = None,
) -> SyncException:
    """Settle an exception with ``resolution`` and its stock movement, recording who, when, how."""
    exception = session.get(SyncException, exception_id, with_for_update=True)
    if exception is None:
        raise ExceptionNotFound(f"no sync exception {exception_id}")
    if exception.status == "resolved":
        raise AlreadyResolved(f"sync exception {exception_id} was resolved already")
    if (counted is not None) != (resolution is Resolution.CORRECT_COUNT):
        raise InvalidRequest(
            "give the number counted with correct_count, and only with it", code="invalid_counted"
        )
    if (receipt_id is not None) != (resolution is Resolution.ATTACH_RECEIPT):
        raise InvalidRequest(
            "give the receipt with attach_receipt, and only with it", code="invalid_receipt"
        )
    ref, actor = f"sync-exception:{exception.id}", str(actor_id)
    if counted is not None:
        inventory_ledger.record_count(
            session,
            sku=exception.sku,
            warehouse=exception.warehouse_code,
            counted=counted,
            ref=ref,
            actor_id=actor,
        )
    if receipt_id is not None:
        _attach(session, exception, receipt_id, ref=ref, actor=actor)
    exception.status = "resolved"
    exception.resolved_at = utcnow()
    exception.resolved_by = actor_id
    exception.note = note
    exception.resolution = resolution.value
    exception.counted = counted
    exception.receipt_id = receipt_id
    session.flush()
    outbox.record(
        session,
        ExceptionResolved(
            exception_id=exception.id, resolved_by=actor, resolution=resolution.value
        ),
    )
    return exception


def _attach(
    session: Session, exception: SyncException, receipt_id: int, *, ref: str, actor: str
) -> None:
    receipt = inventory_history.get_movement(session, movement_id=receipt_id)
    if (
        receipt is None
        or receipt.reason != "receipt"
        or (receipt.sku, receipt.warehouse) != (exception.sku, exception.warehouse_code)
    ):
        raise NotAReceipt(
            f"movement {receipt_id} is not a receipt of {exception.sku} "
            f"in {exception.warehouse_code}"
        )
    # The sale first: it locks the stock row, so concurrent attachments to this receipt queue
    # here and each then sees what the others took (409 insufficient_stock if not available).
    inventory_ledger.record_movement(
        session,
        sku=exception.sku,
        warehouse=exception.warehouse_code,
        delta=-exception.shortfall,
        reason="sale",
        ref=ref,
        actor_id=actor,
    )
    taken = session.scalar(
        select(func.coalesce(func.sum(SyncException.shortfall), 0)).where(
            SyncException.receipt_id == receipt_id, SyncException.id != exception.id
        )
    )
    if int(taken or 0) + exception.shortfall > receipt.delta:
        raise ReceiptUsedUp(
            f"receipt {receipt_id} brought {receipt.delta} units and {taken} of them are "
            f"attached to other exceptions already: it cannot cover {exception.shortfall} more"
        )


def receipts_for(
    session: Session, *, exception: ExceptionRead, limit: int = 20
) -> list[inventory_history.MovementView]:
    """The latest receipts of the exception's SKU and warehouse (candidates to attach)."""
    movements, _ = inventory_history.list_movements(
        session, sku=exception.sku, warehouses=[exception.warehouse], limit=200
    )
    return [m for m in movements if m.reason == "receipt"][:limit]


def count_open(connection: Connection, *, warehouses: Collection[str] | None = None) -> int:
    """How many sync exceptions wait for a manager (for the metrics gauge and the dashboard),
    optionally of some warehouses only."""
    query = select(func.count()).select_from(SyncException).where(SyncException.status == "open")
    if warehouses is not None:
        query = query.where(SyncException.warehouse_code.in_(sorted(warehouses)))
    return int(connection.execute(query).scalar_one())
