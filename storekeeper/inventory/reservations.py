"""Reservations: stock set aside for a reference (an order), then released or fulfilled.

References live in namespaces, so that no caller can settle another's reservation: orders
reserve under ``order:<id>`` (the ordering service, in process or with a service token); a
person's references are filed under their transport's prefix (``http:`` or ``grpc:``), whatever
they send. :func:`filed_ref` is the one place that decides it.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from storekeeper.catalog import service as catalog_service
from storekeeper.db import utcnow
from storekeeper.errors import Conflict, InvalidRequest, NotFound
from storekeeper.events import outbox
from storekeeper.inventory import domain, movements
from storekeeper.inventory.domain import Allocation, Point
from storekeeper.inventory.events import StockChanged
from storekeeper.inventory.levels import where_row
from storekeeper.inventory.models import Reservation, StockLevel, Warehouse
from storekeeper.inventory.warehouses import require_warehouse
from storekeeper.observability import metrics
from storekeeper.observability.counting import count_on_commit

_stock = cast(Table, StockLevel.__table__)
_reservation = cast(Table, Reservation.__table__)


class RefInUse(Conflict):
    """The reference names a reservation of other lines, or one already settled."""

    code = "ref_in_use"


class UnknownReservation(NotFound):
    """Nothing was ever reserved under that reference."""

    code = "unknown_reservation"


ORDER_REFS = "order:"
"""The namespace of orders' reservations, used only by the ordering service."""


class RefCaller(enum.Enum):
    """Who names a reservation, which decides the namespace its reference is filed in."""

    SERVICE = ""  # the ordering service (a service token): references as given, ``order:<id>``
    HTTP = "http:"  # a person through the HTTP API
    GRPC = "grpc:"  # a person through gRPC


def filed_ref(ref: str, *, caller: RefCaller) -> str:
    """The reference as stored: a person's within their transport's namespace, a service's as is.

    A person sending ``order:42`` thus names ``http:order:42``, never the order's reservation.
    """
    return caller.value + ref


# With each warehouse's site, which allocation needs: one statement instead of two per order
# (bench W2). Only the stock rows are locked; warehouses are read as they are.
_LOCK_STOCK_OF_SKUS = (
    select(
        _stock.c.sku,
        _stock.c.warehouse_code,
        _stock.c.on_hand,
        _stock.c.reserved,
        Warehouse.lat,
        Warehouse.lon,
    )
    .join(Warehouse, Warehouse.code == _stock.c.warehouse_code)
    .where(_stock.c.sku.in_(bindparam("skus", expanding=True)))
    .order_by(_stock.c.sku, _stock.c.warehouse_code)
    .with_for_update(of=_stock)
)
_RESERVE = (
    update(_stock)
    .where(
        _stock.c.sku == bindparam("r_sku"),
        _stock.c.warehouse_code == bindparam("r_warehouse"),
        _stock.c.on_hand - _stock.c.reserved >= bindparam("r_qty"),
    )
    .values(
        reserved=_stock.c.reserved + bindparam("r_qty"),
        version=_stock.c.version + 1,
        updated_at=bindparam("r_now"),
    )
    .returning(_stock.c.on_hand, _stock.c.reserved)
)


def reserve(
    session: Session,
    *,
    ref: str,
    lines: Mapping[str, int],
    ship_to: Point | None,
    warehouses: Collection[str] | None = None,
    expires_at: datetime | None = None,
) -> list[Allocation]:
    """Set stock aside for ``ref`` from the nearest warehouses that can serve, or raise.

    The stock rows of every SKU in the order are locked (in one global order, so concurrent
    orders cannot deadlock) before availability is read: no two orders can promise the same
    unit. SQLite has no row locks; there the write transaction itself is exclusive. The
    statements are built once (at import): this is the hottest write path (bench W2).
    ``warehouses`` limits the choice to those warehouses (a clerk reserving over gRPC).
    ``expires_at``: released by ``release_expired`` after then if still held.
    """
    if any(qty <= 0 for qty in lines.values()):
        raise InvalidRequest("reserved quantities must be positive", code="invalid_quantity")
    connection = session.connection()  # Core on the session's connection: no ORM layer
    available: dict[str, dict[str, int]] = {}
    sites: dict[str, Point] = {}
    for row in connection.execute(_LOCK_STOCK_OF_SKUS, {"skus": sorted(lines)}):
        if warehouses is None or row.warehouse_code in warehouses:
            available.setdefault(row.sku, {})[row.warehouse_code] = row.on_hand - row.reserved
            sites[row.warehouse_code] = Point(row.lat, row.lon)
    allocations = domain.allocate(lines, available, sites, ship_to)
    count_on_commit(session, metrics.RESERVATIONS.labels("reserved"))
    now = utcnow()
    events: list[StockChanged] = []
    for alloc in allocations:
        # Cannot miss: the row is locked and was just read with enough available.
        row = connection.execute(
            _RESERVE,
            {"r_sku": alloc.sku, "r_warehouse": alloc.warehouse, "r_qty": alloc.qty, "r_now": now},
        ).one()
        events.append(
            StockChanged(
                sku=alloc.sku,
                warehouse=alloc.warehouse,
                on_hand=row.on_hand,
                reserved=row.reserved,
                reason="reserved",
                ref=ref,
            )
        )
    connection.execute(
        insert(_reservation),
        [
            {
                "id": uuid.uuid4(),
                "ref": ref,
                "sku": a.sku,
                "warehouse_code": a.warehouse,
                "qty": a.qty,
                "status": "active",
                "created_at": now,
                "updated_at": now,
                "expires_at": expires_at,
            }
            for a in allocations
        ],
    )
    outbox.record(session, *events)
    return allocations


def _take_active(session: Session, ref: str) -> list[Reservation]:
    return list(
        session.scalars(
            select(Reservation)
            .where(Reservation.ref == ref, Reservation.status == "active")
            .order_by(Reservation.sku, Reservation.warehouse_code)
            .with_for_update()
        )
    )


def reservations_of(session: Session, *, ref: str) -> list[tuple[Allocation, str]]:
    """Every reservation filed under ``ref`` with its status, in (SKU, warehouse) order."""
    rows = session.execute(
        select(Reservation.sku, Reservation.warehouse_code, Reservation.qty, Reservation.status)
        .where(Reservation.ref == ref)
        .order_by(Reservation.sku, Reservation.warehouse_code)
    )
    return [(Allocation(r.sku, r.warehouse_code, r.qty), r.status) for r in rows]


def release(session: Session, *, ref: str) -> int:
    """Give back every unit still reserved for ``ref``; returns how many. Idempotent."""
    return _settle(session, ref=ref, consume=False, actor_id=None)


def fulfil(session: Session, *, ref: str, actor_id: str | None = None) -> int:
    """Turn every active reservation of ``ref`` into a ``sale`` movement; returns units shipped."""
    return _settle(session, ref=ref, consume=True, actor_id=actor_id)


def _settle(session: Session, *, ref: str, consume: bool, actor_id: str | None) -> int:
    """Close the active reservations of ``ref``: released back, or consumed as sales."""
    settled = 0
    now = utcnow()
    reason = "sale" if consume else "released"
    for res in _take_active(session, ref):
        change: dict[str, object] = {
            "reserved": _stock.c.reserved - res.qty,
            "version": _stock.c.version + 1,
            "updated_at": now,
        }
        if consume:  # reserved <= on_hand (a CHECK) makes on_hand >= qty here too
            change["on_hand"] = _stock.c.on_hand - res.qty
        row = session.execute(
            update(_stock)
            .where(*where_row(res.sku, res.warehouse_code), _stock.c.reserved >= res.qty)
            .values(change)
            .returning(_stock.c.on_hand, _stock.c.reserved)
        ).one()
        written = None
        if consume:
            written = movements.write(
                session,
                sku=res.sku,
                warehouse=res.warehouse_code,
                delta=-res.qty,
                reason="sale",
                ref=ref,
                actor_id=actor_id,
                at=now,
            )
        res.status, res.updated_at = ("consumed" if consume else "released"), now
        settled += res.qty
        outbox.record(
            session,
            StockChanged(
                sku=res.sku,
                warehouse=res.warehouse_code,
                on_hand=row.on_hand,
                reserved=row.reserved,
                reason=reason,
                ref=ref,
            )
            if written is None
            else movements.changed(
                sku=res.sku,
                warehouse=res.warehouse_code,
                on_hand=row.on_hand,
                reserved=row.reserved,
                reason=reason,
                ref=ref,
                movement=written,
                delta=-res.qty,
            ),
        )
    return settled


def reserve_once(
    session: Session,
    *,
    ref: str,
    lines: Mapping[str, int],
    ship_to: Point | None,
    warehouses: Collection[str] | None = None,
    expires_at: datetime | None = None,
) -> tuple[list[Allocation], bool]:
    """``reserve``, idempotent by ``ref``: the same call again answers the same allocations.

    Returns the allocations and whether they were made earlier (a replay: a client retrying
    after a lost answer, or another service's retried call). The same ``ref`` with other lines,
    or after its reservation was released or fulfilled, raises ``RefInUse``.
    """
    _lock_ref(session, ref)
    existing = reservations_of(session, ref=ref)
    if not existing:
        made = reserve(
            session,
            ref=ref,
            lines=lines,
            ship_to=ship_to,
            warehouses=warehouses,
            expires_at=expires_at,
        )
        return made, False
    held: dict[str, int] = {}
    for alloc, _ in existing:
        held[alloc.sku] = held.get(alloc.sku, 0) + alloc.qty
    if held != dict(lines):
        raise RefInUse(f"ref {ref} was reserved already with other lines; use a new ref")
    if any(status != "active" for _, status in existing):
        raise RefInUse(f"ref {ref} was reserved and settled already; use a new ref")
    return [alloc for alloc, _ in existing], True


def reserve_listed(
    session: Session,
    *,
    ref: str,
    lines: Mapping[str, int],
    ship_to: Point | None,
    warehouses: Sequence[str] = (),
    within: Collection[str] | None = None,
    expires_at: datetime | None = None,
) -> tuple[list[Allocation], bool]:
    """``reserve_once`` after checking every SKU is listed and every named warehouse exists.

    An unknown or archived SKU, or an unknown warehouse, raises a ``NotFound``. Stock comes only
    from the named ``warehouses``; when none are named, only from ``within`` if given (a clerk's
    warehouses), else from any warehouse.
    """
    catalog_service.quote(session, skus=lines)  # unknown or archived SKU: 404
    for code in warehouses:
        require_warehouse(session, code=code)
    limit = frozenset(warehouses) or within
    return reserve_once(
        session, ref=ref, lines=lines, ship_to=ship_to, warehouses=limit, expires_at=expires_at
    )


def _lock_ref(session: Session, ref: str) -> None:
    """Serialize calls for one reference, so two concurrent calls cannot both reserve it.

    PostgreSQL: a transaction-scoped advisory lock on the reference's hash, taken before any
    stock-row lock (and the only advisory lock taken with stock locks held, so lock order stays
    acyclic). SQLite: the write transaction is exclusive already.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(ref, 0))))


def stale_order_refs(session: Session, *, created_before: datetime, limit: int = 100) -> list[str]:
    """Orders' references (``order:<id>``) still holding stock reserved before
    ``created_before``, oldest first: ordering's sweeper asks which of them have no order."""
    first = func.min(Reservation.created_at)
    query = (
        select(Reservation.ref)
        .where(
            Reservation.status == "active",
            Reservation.ref.like("order:%"),
            Reservation.created_at < created_before,
        )
        .group_by(Reservation.ref)
        .order_by(first, Reservation.ref)
        .limit(limit)
    )
    return list(session.scalars(query))


def release_expired(session: Session, *, now: datetime, limit: int = 100) -> list[str]:
    """Release the reservations whose time-to-live ran out before ``now`` (at most ``limit``
    references per call, oldest expiry first); returns their references."""
    refs = list(
        session.scalars(
            select(Reservation.ref)
            .where(Reservation.status == "active", Reservation.expires_at < now)
            .group_by(Reservation.ref)
            .order_by(func.min(Reservation.expires_at), Reservation.ref)
            .limit(limit)
        )
    )
    for ref in refs:
        release(session, ref=ref)
    return refs
