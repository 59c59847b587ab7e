"""Sync exceptions: offline stock work the server could not apply in full, for a manager."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from storekeeper.accounts import policy
from storekeeper.accounts.domain import STAFF, Principal
from storekeeper.db import utcnow
from storekeeper.errors import Conflict, InvalidRequest, NotFound
from storekeeper.events import outbox
from storekeeper.ids import parse_id
from storekeeper.sync.events import ExceptionResolved
from storekeeper.sync.models import SyncException

MAX_PAGE = 200


class ExceptionNotFound(NotFound):
    """No sync exception has that id."""

    code = "exception_not_found"


class AlreadyResolved(Conflict):
    """The sync exception was resolved before."""

    code = "already_resolved"


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


def resolve(
    session: Session, *, exception_id: int, note: str, actor_id: uuid.UUID
) -> SyncException:
    """Mark an exception resolved, with who did it, when and how."""
    exception = session.get(SyncException, exception_id, with_for_update=True)
    if exception is None:
        raise ExceptionNotFound(f"no sync exception {exception_id}")
    if exception.status == "resolved":
        raise AlreadyResolved(f"sync exception {exception_id} was resolved already")
    exception.status = "resolved"
    exception.resolved_at = utcnow()
    exception.resolved_by = actor_id
    exception.note = note
    session.flush()
    outbox.record(session, ExceptionResolved(exception_id=exception.id, resolved_by=str(actor_id)))
    return exception


def count_open(connection: Connection, *, warehouses: Collection[str] | None = None) -> int:
    """How many sync exceptions wait for a manager (for the metrics gauge and the dashboard),
    optionally of some warehouses only."""
    query = select(func.count()).select_from(SyncException).where(SyncException.status == "open")
    if warehouses is not None:
        query = query.where(SyncException.warehouse_code.in_(sorted(warehouses)))
    return int(connection.execute(query).scalar_one())
