"""HTTP routes of the inventory context: warehouses and stock."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from storekeeper.accounts import policy
from storekeeper.accounts.domain import STAFF, STOCK_HANDLERS, Principal
from storekeeper.api.deps import SERVICE, CurrentUser, DatabaseDep, ServiceOrStaff, require
from storekeeper.api.errors import ErrorBody, error_body, responses
from storekeeper.db import utcnow
from storekeeper.errors import PermissionDenied
from storekeeper.inventory import ledger, levels, reservations, warehouses
from storekeeper.inventory.domain import Point, merge_lines
from storekeeper.inventory.models import Warehouse
from storekeeper.inventory.schemas import (
    AllocationRead,
    CountBatchCreate,
    CountBatchRead,
    CountCreate,
    CountedLevelRead,
    FulfilRequest,
    LevelRead,
    MovementCreate,
    ReservationCreate,
    ReservationRead,
    SettledRead,
    StaleRefsRead,
    StockRead,
    TransferCreate,
    TransferRead,
    WarehouseCreate,
    WarehouseRead,
)

router = APIRouter(tags=["inventory"])
Staff = Annotated[Principal, Depends(require(STAFF))]
StockHandler = Annotated[Principal, Depends(require(STOCK_HANDLERS))]


def _level(level: levels.Level) -> LevelRead:
    return LevelRead(
        warehouse=level.warehouse,
        on_hand=level.on_hand,
        reserved=level.reserved,
        available=level.available,
    )


@router.post(
    "/warehouses",
    status_code=status.HTTP_201_CREATED,
    response_model=WarehouseRead,
    responses=responses(401, 403, 409, 422),
)
def create_warehouse(body: WarehouseCreate, _: Staff, db: DatabaseDep) -> Warehouse:
    """Add a warehouse (managers and admins)."""
    with db.transaction() as session:
        return warehouses.create_warehouse(session, **body.model_dump())


@router.get("/warehouses", response_model=list[WarehouseRead], responses=responses(401, 403))
def list_warehouses(_: CurrentUser, db: DatabaseDep) -> list[Warehouse]:
    """Every warehouse."""
    with db.reading() as session:
        return warehouses.list_warehouses(session)


@router.post(
    "/stock/movements",
    status_code=status.HTTP_201_CREATED,
    response_model=LevelRead,
    responses=responses(401, 403, 404, 409, 422),
)
def record_movement(body: MovementCreate, who: StockHandler, db: DatabaseDep) -> LevelRead:
    """Receive (+), write off or sell (-), or correct stock; 409 if it would go below zero.

    Clerks only at the warehouses they are assigned to."""
    policy.ensure_warehouses(who, [body.warehouse])
    with db.transaction() as session:
        level = ledger.record_movement(
            session,
            sku=body.sku,
            warehouse=body.warehouse,
            delta=body.delta,
            reason=body.reason,
            ref=body.ref,
            actor_id=str(who.user_id),
            unit_cost_cents=body.unit_cost_cents,
        )
    return _level(level)


@router.post(
    "/stock/counts",
    status_code=status.HTTP_201_CREATED,
    response_model=LevelRead,
    responses=responses(401, 403, 404, 409, 422),
)
def record_count(body: CountCreate, who: StockHandler, db: DatabaseDep) -> LevelRead:
    """Set on-hand to a physical count; the difference is recorded as a movement.

    Clerks only at the warehouses they are assigned to."""
    policy.ensure_warehouses(who, [body.warehouse])
    with db.transaction() as session:
        level = ledger.record_count(
            session,
            sku=body.sku,
            warehouse=body.warehouse,
            counted=body.counted,
            ref=body.ref,
            actor_id=str(who.user_id),
        )
    return _level(level)


@router.post(
    "/stock/counts/batch",
    status_code=status.HTTP_201_CREATED,
    response_model=CountBatchRead,
    responses=responses(401, 403, 404, 409, 422),
)
def record_counts(body: CountBatchCreate, who: StockHandler, db: DatabaseDep) -> JSONResponse:
    """Record a whole count (a stocktake) of one warehouse in one transaction: all lines or none.

    Every line is checked first; ``422 invalid_lines`` lists every problem at once (unknown or
    repeated SKU, count out of range, count below the units reserved), each with the index of
    its line in ``loc``. Clerks only at the warehouses they are assigned to."""
    policy.ensure_warehouses(who, [body.warehouse])
    try:
        with db.transaction() as session:
            counted = ledger.record_counts(
                session,
                warehouse=body.warehouse,
                lines=[(line.sku, line.counted) for line in body.lines],
                ref=body.ref,
                actor_id=str(who.user_id),
            )
    except ledger.InvalidCountLines as exc:
        problems = [
            {"type": "invalid_line", "loc": ["body", "lines", number - 1], "msg": reason}
            for number, _, reason in exc.problems
        ]
        return JSONResponse(
            error_body(problems, exc.code), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
        )
    read = CountBatchRead(
        warehouse=body.warehouse,
        ref=body.ref,
        lines=[
            CountedLevelRead(
                sku=sku, on_hand=lv.on_hand, reserved=lv.reserved, available=lv.available
            )
            for sku, lv in counted
        ],
    )
    return JSONResponse(read.model_dump(mode="json"), status_code=status.HTTP_201_CREATED)


@router.post(
    "/stock/transfers",
    status_code=status.HTTP_201_CREATED,
    response_model=TransferRead,
    responses=responses(401, 403, 404, 409, 422),
)
def transfer(body: TransferCreate, who: StockHandler, db: DatabaseDep) -> TransferRead:
    """Move units between two warehouses (a clerk must be assigned to both)."""
    policy.ensure_warehouses(who, [body.from_, body.to])
    with db.transaction() as session:
        out, into = ledger.transfer(
            session,
            sku=body.sku,
            source=body.from_,
            target=body.to,
            qty=body.qty,
            actor_id=str(who.user_id),
        )
    return TransferRead(sku=body.sku, from_=_level(out), to=_level(into))


@router.get("/stock/{sku}", response_model=StockRead, responses=responses(401, 403, 404, 422))
def get_stock(
    sku: Annotated[str, Path(min_length=1, max_length=64)], _: StockHandler, db: DatabaseDep
) -> StockRead:
    """On-hand, reserved and available stock of a SKU, in total and per warehouse."""
    with db.reading() as session:
        totals = levels.stock_totals(session, sku=sku)
    return StockRead(
        sku=totals.sku,
        on_hand=totals.on_hand,
        reserved=totals.reserved,
        available=totals.available,
        warehouses=[_level(lv) for lv in totals.warehouses],
    )


@router.post(
    "/stock/reservations",
    status_code=status.HTTP_201_CREATED,
    response_model=ReservationRead,
    responses={
        **responses(401, 403, 404, 422),
        200: {"model": ReservationRead, "description": "the same call was made before"},
        409: {"model": ErrorBody, "description": "insufficient stock, or ref in use"},
    },
)
def reserve(body: ReservationCreate, who: ServiceOrStaff, db: DatabaseDep) -> JSONResponse:
    """Set stock aside under ``ref`` from the nearest warehouses, all lines or none.

    With ``ttl_s`` the reservation is released by itself that many seconds later if still held
    (a cart). Idempotent by ``ref``: the same call again answers 200 with the same allocations; the
    same ``ref`` with other lines is 409 ``ref_in_use``. Managers, admins and other
    Storekeeper services (``serve --only``) call it; an order reserves through ``POST /orders``.
    A person's references are their own (``http:`` namespace): only the ordering service's
    service token names orders' reservations (``order:<id>``).
    """
    wanted = merge_lines([(line.sku, line.qty) for line in body.lines])
    ship_to = Point(body.ship_to.lat, body.ship_to.lon) if body.ship_to else None
    expires_at = utcnow() + timedelta(seconds=body.ttl_s) if body.ttl_s else None
    with db.transaction() as session:
        allocations, replayed = reservations.reserve_listed(
            session, ref=_filed(body.ref, who), lines=wanted, ship_to=ship_to, expires_at=expires_at
        )
    held = [AllocationRead(sku=a.sku, warehouse=a.warehouse, qty=a.qty) for a in allocations]
    read = ReservationRead(ref=body.ref, allocations=held, replayed=replayed)
    return JSONResponse(
        read.model_dump(mode="json"),
        status_code=status.HTTP_200_OK if replayed else status.HTTP_201_CREATED,
    )


@router.get(
    "/stock/reservations/stale",
    response_model=StaleRefsRead,
    responses=responses(401, 403, 422),
)
def stale_reservations(
    who: ServiceOrStaff,
    db: DatabaseDep,
    older_than_s: Annotated[float, Query(ge=0, le=365 * 24 * 3600)] = 300,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> StaleRefsRead:
    """Orders' references (``order:<id>``) still holding stock reserved more than
    ``older_than_s`` ago, oldest first. For the ordering service (``serve --only``), whose
    sweeper releases those whose order never committed."""
    if who is not SERVICE:
        raise PermissionDenied("only the ordering service asks for orders' reservations")
    created_before = utcnow() - timedelta(seconds=older_than_s)
    with db.reading() as session:
        refs = reservations.stale_order_refs(session, created_before=created_before, limit=limit)
    return StaleRefsRead(refs=refs)


ReservationRefPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")]


@router.post(
    "/stock/reservations/{ref:path}/release",
    response_model=SettledRead,
    responses=responses(401, 403, 404, 422),
)
def release(ref: ReservationRefPath, who: ServiceOrStaff, db: DatabaseDep) -> SettledRead:
    """Give back what is still reserved under ``ref``; ``units`` is 0 when nothing was left."""
    filed = _filed(ref, who)
    with db.transaction() as session:
        _require_reservation(session, filed, shown=ref)
        return SettledRead(ref=ref, units=reservations.release(session, ref=filed))


@router.post(
    "/stock/reservations/{ref:path}/fulfil",
    response_model=SettledRead,
    responses=responses(401, 403, 404, 422),
)
def fulfil(
    ref: ReservationRefPath,
    who: ServiceOrStaff,
    db: DatabaseDep,
    body: FulfilRequest | None = None,
) -> SettledRead:
    """Turn what is reserved under ``ref`` into ``sale`` movements (the goods left).

    ``units`` is 0 when it was fulfilled or released already. A service names the person who
    shipped in ``actor_id``; for a manager or admin it is the caller.
    """
    actor = (body.actor_id if body else None) if who is SERVICE else who.user_id
    filed = _filed(ref, who)
    with db.transaction() as session:
        _require_reservation(session, filed, shown=ref)
        units = reservations.fulfil(session, ref=filed, actor_id=str(actor) if actor else None)
    return SettledRead(ref=ref, units=units)


def _filed(ref: str, who: Principal) -> str:
    caller = reservations.RefCaller.SERVICE if who is SERVICE else reservations.RefCaller.HTTP
    return reservations.filed_ref(ref, caller=caller)


def _require_reservation(session: Session, ref: str, *, shown: str) -> None:
    if not reservations.reservations_of(session, ref=ref):
        raise reservations.UnknownReservation(f"nothing was reserved under ref {shown}")
