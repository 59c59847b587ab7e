"""HTTP routes of the inventory context: warehouses and stock."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, status

from storekeeper.accounts import policy
from storekeeper.accounts.domain import STAFF, STOCK_HANDLERS, Principal
from storekeeper.api.deps import CurrentUser, DatabaseDep, require
from storekeeper.api.errors import responses
from storekeeper.inventory import service
from storekeeper.inventory.models import Warehouse
from storekeeper.inventory.schemas import (
    CountCreate,
    LevelRead,
    MovementCreate,
    StockRead,
    TransferCreate,
    TransferRead,
    WarehouseCreate,
    WarehouseRead,
)

router = APIRouter(tags=["inventory"])
Staff = Annotated[Principal, Depends(require(STAFF))]
StockHandler = Annotated[Principal, Depends(require(STOCK_HANDLERS))]


def _level(level: service.Level) -> LevelRead:
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
        return service.create_warehouse(session, **body.model_dump())


@router.get("/warehouses", response_model=list[WarehouseRead], responses=responses(401, 403))
def list_warehouses(_: CurrentUser, db: DatabaseDep) -> list[Warehouse]:
    """Every warehouse."""
    with db.reading() as session:
        return service.list_warehouses(session)


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
        level = service.record_movement(
            session,
            sku=body.sku,
            warehouse=body.warehouse,
            delta=body.delta,
            reason=body.reason,
            ref=body.ref,
            actor_id=str(who.user_id),
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
        level = service.record_count(
            session,
            sku=body.sku,
            warehouse=body.warehouse,
            counted=body.counted,
            ref=body.ref,
            actor_id=str(who.user_id),
        )
    return _level(level)


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
        out, into = service.transfer(
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
        levels = service.stock_of(session, sku=sku)
    on_hand = sum(lv.on_hand for lv in levels)
    reserved = sum(lv.reserved for lv in levels)
    return StockRead(
        sku=sku,
        on_hand=on_hand,
        reserved=reserved,
        available=on_hand - reserved,
        warehouses=[_level(lv) for lv in levels],
    )
