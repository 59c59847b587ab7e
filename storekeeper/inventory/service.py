"""Use cases of the inventory context: warehouses, movements, counts, transfers, reservations.

Every change of on-hand goes through ``_apply_delta``: one conditional UPDATE of the running total
(which refuses to take available stock below zero, atomically, on SQLite and PostgreSQL alike)
plus one ledger row, so on-hand always equals the sum of the movements. Stock rows are updated
through SQLAlchemy Core on these hot paths: the ORM's identity map adds nothing to a counter.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, Row, Table, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from storekeeper.catalog import service as catalog_service
from storekeeper.db import utcnow
from storekeeper.errors import Conflict, InvalidRequest, NotFound
from storekeeper.events import outbox
from storekeeper.inventory import domain
from storekeeper.inventory.domain import Allocation, InsufficientStock, Point
from storekeeper.inventory.events import StockChanged
from storekeeper.inventory.models import Movement, Reservation, StockLevel, Warehouse
from storekeeper.observability import metrics
from storekeeper.observability.counting import count_on_commit

_stock = cast(Table, StockLevel.__table__)

MANUAL_REASONS = frozenset({"receipt", "damage", "correction", "sale"})
"""Reasons a caller may give to ``POST /stock/movements``; counts and transfers have their own."""


class UnknownWarehouse(NotFound):
    """No warehouse has that code."""

    code = "unknown_warehouse"


class DuplicateWarehouse(Conflict):
    """A warehouse with that code exists already."""

    code = "duplicate_warehouse"


class BelowReserved(Conflict):
    """A count below the units already reserved for orders."""

    code = "below_reserved"


@dataclass(frozen=True, slots=True)
class Level:
    """Stock of one SKU in one warehouse."""

    warehouse: str
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        """Units that can still be promised: on-hand less reserved."""
        return self.on_hand - self.reserved


@dataclass(frozen=True, slots=True)
class OfflineDelta:
    """What became of a stock change made offline: the part applied and the part that was not."""

    level: Level
    applied: int
    shortfall: int


# --- warehouses -------------------------------------------------------------------------------


def create_warehouse(
    session: Session, *, code: str, name: str, lat: float, lon: float
) -> Warehouse:
    """Add a warehouse."""
    if session.get(Warehouse, code) is not None:
        raise DuplicateWarehouse(f"warehouse {code} exists already")
    warehouse = Warehouse(code=code, name=name, lat=lat, lon=lon)
    session.add(warehouse)
    session.flush()
    return warehouse


def list_warehouses(session: Session) -> list[Warehouse]:
    """Every warehouse in code order."""
    return list(session.scalars(select(Warehouse).order_by(Warehouse.code)))


def _require_warehouse(session: Session, code: str) -> None:
    if session.scalar(select(Warehouse.code).where(Warehouse.code == code)) is None:
        raise UnknownWarehouse(f"no warehouse with code {code}")


def _require_sku(session: Session, sku: str) -> None:
    if not catalog_service.exists(session, sku=sku):
        raise catalog_service.UnknownSku(f"no product with SKU {sku}")


# --- the ledger -------------------------------------------------------------------------------


def _ensure_level(session: Session, sku: str, warehouse: str) -> None:
    """Create the zero stock row if missing; concurrent creators do not collide."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(
        dialect.insert(_stock)
        .values(sku=sku, warehouse_code=warehouse, on_hand=0, reserved=0, updated_at=utcnow())
        .on_conflict_do_nothing()
    )


def _where(sku: str, warehouse: str) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return (_stock.c.sku == sku, _stock.c.warehouse_code == warehouse)


def _apply_delta(
    session: Session,
    *,
    sku: str,
    warehouse: str,
    delta: int,
    reason: str,
    ref: str | None,
    actor_id: str | None,
    replica_id: str | None = None,
    mutation_id: uuid.UUID | None = None,
) -> Level:
    """Add ``delta`` to on-hand and to the ledger, unless available stock would drop below 0.

    The stock row must exist (``_ensure_level``); a missing row reads as zero stock.
    """
    row = session.execute(
        update(_stock)
        .where(*_where(sku, warehouse), _stock.c.on_hand + delta - _stock.c.reserved >= 0)
        .values(
            on_hand=_stock.c.on_hand + delta,
            version=_stock.c.version + 1,
            updated_at=utcnow(),
        )
        .returning(_stock.c.on_hand, _stock.c.reserved)
    ).one_or_none()
    if row is None:
        current = level(session, sku=sku, warehouse=warehouse)
        raise InsufficientStock(sku, requested=-delta, available=current.available)
    session.add(
        Movement(
            sku=sku,
            warehouse_code=warehouse,
            delta=delta,
            reason=reason,
            ref=ref,
            actor_id=actor_id,
            replica_id=replica_id,
            mutation_id=mutation_id,
        )
    )
    count_on_commit(session, metrics.STOCK_MOVEMENTS.labels(reason))
    outbox.record(
        session,
        StockChanged(
            sku=sku,
            warehouse=warehouse,
            on_hand=row.on_hand,
            reserved=row.reserved,
            reason=reason,
            ref=ref,
        ),
    )
    return Level(warehouse, row.on_hand, row.reserved)


def level(session: Session, *, sku: str, warehouse: str) -> Level:
    """Current stock of ``sku`` in ``warehouse`` (zero if never stocked)."""
    row = session.execute(
        select(_stock.c.on_hand, _stock.c.reserved).where(*_where(sku, warehouse))
    ).one_or_none()
    return Level(warehouse, row.on_hand, row.reserved) if row else Level(warehouse, 0, 0)


def record_movement(
    session: Session,
    *,
    sku: str,
    warehouse: str,
    delta: int,
    reason: str,
    ref: str | None = None,
    actor_id: str | None = None,
    replica_id: str | None = None,
    mutation_id: uuid.UUID | None = None,
) -> Level:
    """Receive, write off or correct stock; refused (409) if it would oversell what is there."""
    if reason not in MANUAL_REASONS:
        raise InvalidRequest(
            f"reason must be one of {sorted(MANUAL_REASONS)}; counts and transfers have "
            "their own endpoints",
            code="invalid_reason",
        )
    if delta == 0:
        raise InvalidRequest("delta must not be zero", code="invalid_delta")
    _require_sku(session, sku)
    _require_warehouse(session, warehouse)
    _ensure_level(session, sku, warehouse)
    return _apply_delta(
        session,
        sku=sku,
        warehouse=warehouse,
        delta=delta,
        reason=reason,
        ref=ref,
        actor_id=actor_id,
        replica_id=replica_id,
        mutation_id=mutation_id,
    )


OFFLINE_REASONS = MANUAL_REASONS | {"count"}
"""Reasons of stock changes made on offline replicas (storekeeper.sync)."""


def record_offline_delta(
    session: Session,
    *,
    sku: str,
    warehouse: str,
    delta: int,
    reason: str,
    replica_id: str,
    mutation_id: uuid.UUID,
    ref: str | None = None,
    actor_id: str | None = None,
) -> OfflineDelta:
    """Apply a change an offline replica made, as far as available stock allows.

    What happened offline happened: it is not refused like ``record_movement``. An increase
    applies whole; a decrease takes at most the available units (reserved ones stay promised to
    their orders), and the rest comes back as ``shortfall`` for the caller to flag. One ledger
    movement is written either way (possibly of 0, like a count that changes nothing), naming
    the replica and the mutation.
    """
    if reason not in OFFLINE_REASONS:
        raise InvalidRequest(f"reason must be one of {sorted(OFFLINE_REASONS)}")
    _require_sku(session, sku)
    _require_warehouse(session, warehouse)
    _ensure_level(session, sku, warehouse)
    row = session.execute(
        select(_stock.c.on_hand, _stock.c.reserved).where(*_where(sku, warehouse)).with_for_update()
    ).one()
    applied = delta if delta >= 0 else -min(-delta, row.on_hand - row.reserved)
    level = _apply_delta(
        session,
        sku=sku,
        warehouse=warehouse,
        delta=applied,
        reason=reason,
        ref=ref,
        actor_id=actor_id,
        replica_id=replica_id,
        mutation_id=mutation_id,
    )
    return OfflineDelta(level, applied, applied - delta)


def record_count(
    session: Session,
    *,
    sku: str,
    warehouse: str,
    counted: int,
    ref: str | None = None,
    actor_id: str | None = None,
) -> Level:
    """Set on-hand to what was counted by recording the difference as a ``count`` movement."""
    _require_sku(session, sku)
    _require_warehouse(session, warehouse)
    _ensure_level(session, sku, warehouse)
    row = session.execute(
        select(_stock.c.on_hand, _stock.c.reserved).where(*_where(sku, warehouse)).with_for_update()
    ).one()
    if counted < row.reserved:
        raise BelowReserved(
            f"counted {counted} but {row.reserved} units of {sku} in {warehouse} are reserved "
            "for orders: cancel or re-route those orders first"
        )
    # A zero difference is still recorded: the ledger shows the count took place.
    return _apply_delta(
        session,
        sku=sku,
        warehouse=warehouse,
        delta=counted - row.on_hand,
        reason="count",
        ref=ref,
        actor_id=actor_id,
    )


def transfer(
    session: Session,
    *,
    sku: str,
    source: str,
    target: str,
    qty: int,
    actor_id: str | None = None,
) -> tuple[Level, Level]:
    """Move ``qty`` units between warehouses as a pair of ``transfer`` movements."""
    if source == target:
        raise InvalidRequest("source and target warehouse must differ", code="invalid_transfer")
    if qty <= 0:
        raise InvalidRequest("a transfer moves a positive quantity", code="invalid_quantity")
    _require_sku(session, sku)
    for code in sorted((source, target)):
        _require_warehouse(session, code)
        _ensure_level(session, sku, code)
    # Lock both rows in one fixed order, so opposite transfers cannot deadlock.
    session.execute(
        select(_stock.c.sku)
        .where(_stock.c.sku == sku, _stock.c.warehouse_code.in_((source, target)))
        .order_by(_stock.c.warehouse_code)
        .with_for_update()
    ).all()
    ref = f"transfer:{uuid.uuid4()}"
    out = _apply_delta(
        session,
        sku=sku,
        warehouse=source,
        delta=-qty,
        reason="transfer",
        ref=ref,
        actor_id=actor_id,
    )
    into = _apply_delta(
        session, sku=sku, warehouse=target, delta=qty, reason="transfer", ref=ref, actor_id=actor_id
    )
    return out, into


def stock_of(session: Session, *, sku: str) -> list[Level]:
    """Stock of ``sku`` in every warehouse that ever held it."""
    _require_sku(session, sku)
    rows = session.execute(
        select(_stock.c.warehouse_code, _stock.c.on_hand, _stock.c.reserved)
        .where(_stock.c.sku == sku)
        .order_by(_stock.c.warehouse_code)
    )
    return [Level(r.warehouse_code, r.on_hand, r.reserved) for r in rows]


# --- reservations -----------------------------------------------------------------------------


_LOCK_STOCK_OF_SKUS = (
    select(_stock.c.sku, _stock.c.warehouse_code, _stock.c.on_hand, _stock.c.reserved)
    .where(_stock.c.sku.in_(bindparam("skus", expanding=True)))
    .order_by(_stock.c.sku, _stock.c.warehouse_code)
    .with_for_update()
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
_SITES = select(Warehouse.code, Warehouse.lat, Warehouse.lon)
_reservation = cast(Table, Reservation.__table__)


def reserve(
    session: Session,
    *,
    ref: str,
    lines: Mapping[str, int],
    ship_to: Point | None,
    warehouses: Collection[str] | None = None,
) -> list[Allocation]:
    """Set stock aside for ``ref`` from the nearest warehouses that can serve, or raise.

    The stock rows of every SKU in the order are locked (in one global order, so concurrent
    orders cannot deadlock) before availability is read: no two orders can promise the same
    unit. SQLite has no row locks; there the write transaction itself is exclusive. The
    statements are built once (at import): this is the hottest write path (bench W2).
    ``warehouses`` limits the choice to those warehouses (a clerk reserving over gRPC).
    """
    if any(qty <= 0 for qty in lines.values()):
        raise InvalidRequest("reserved quantities must be positive", code="invalid_quantity")
    connection = session.connection()  # Core on the session's connection: no ORM layer
    available: dict[str, dict[str, int]] = {}
    for row in connection.execute(_LOCK_STOCK_OF_SKUS, {"skus": sorted(lines)}):
        if warehouses is None or row.warehouse_code in warehouses:
            available.setdefault(row.sku, {})[row.warehouse_code] = row.on_hand - row.reserved
    sites = {row.code: Point(row.lat, row.lon) for row in connection.execute(_SITES)}
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
            .where(*_where(res.sku, res.warehouse_code), _stock.c.reserved >= res.qty)
            .values(change)
            .returning(_stock.c.on_hand, _stock.c.reserved)
        ).one()
        if consume:
            session.add(
                Movement(
                    sku=res.sku,
                    warehouse_code=res.warehouse_code,
                    delta=-res.qty,
                    reason="sale",
                    ref=ref,
                    actor_id=actor_id,
                    created_at=now,
                )
            )
            count_on_commit(session, metrics.STOCK_MOVEMENTS.labels("sale"))
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
            ),
        )
    return settled


def skus_on_hand(session: Session, *, warehouse: str) -> list[str]:
    """SKUs with stock on hand in ``warehouse`` (their ranges bound its rooms' temperature)."""
    query = select(_stock.c.sku).where(_stock.c.warehouse_code == warehouse, _stock.c.on_hand > 0)
    return list(session.scalars(query))


def has_warehouse(session: Session, *, code: str) -> bool:
    """Whether a warehouse has this code."""
    return session.scalar(select(Warehouse.code).where(Warehouse.code == code)) is not None


# Core rows for sync replicas: the initial pull reads a warehouse's whole stock.
_SYNC_COLUMNS = (_stock.c.sku, _stock.c.on_hand, _stock.c.reserved, _stock.c.version)
_SYNC_PAGE = (
    select(*_SYNC_COLUMNS)
    .where(_stock.c.warehouse_code == bindparam("warehouse"), _stock.c.sku > bindparam("after"))
    .order_by(_stock.c.sku)
    .limit(bindparam("limit"))
)
_SYNC_BY_SKU = select(*_SYNC_COLUMNS).where(
    _stock.c.warehouse_code == bindparam("warehouse"),
    _stock.c.sku.in_(bindparam("skus", expanding=True)),
)


def sync_page(
    connection: Connection, *, warehouse: str, after: str, limit: int
) -> Sequence[Row[*tuple[Any, ...]]]:
    """Stock rows of ``warehouse`` with a SKU after ``after``, in SKU order."""
    params = {"warehouse": warehouse, "after": after, "limit": limit}
    return connection.execute(_SYNC_PAGE, params).all()


def sync_rows(
    connection: Connection, *, warehouse: str, skus: Iterable[str]
) -> dict[str, Row[*tuple[Any, ...]]]:
    """The stock rows of ``warehouse`` for the given SKUs that exist."""
    rows = connection.execute(_SYNC_BY_SKU, {"warehouse": warehouse, "skus": sorted(set(skus))})
    return {row.sku: row for row in rows}


def ledger_totals(session: Session, *, skus: list[str] | None = None) -> dict[tuple[str, str], int]:
    """Sum of movements per (SKU, warehouse): what on-hand must equal."""
    query = select(Movement.sku, Movement.warehouse_code, func.sum(Movement.delta)).group_by(
        Movement.sku, Movement.warehouse_code
    )
    if skus:
        query = query.where(Movement.sku.in_(skus))
    return {(sku, wh): int(total) for sku, wh, total in session.execute(query)}


class RefInUse(Conflict):
    """The reference names a reservation of other lines, or one already settled."""

    code = "ref_in_use"


def reserve_once(
    session: Session,
    *,
    ref: str,
    lines: Mapping[str, int],
    ship_to: Point | None,
    warehouses: Collection[str] | None = None,
) -> tuple[list[Allocation], bool]:
    """``reserve``, idempotent by ``ref``: the same call again answers the same allocations.

    Returns the allocations and whether they were made earlier (a replay: a client retrying
    after a lost answer, or another service's retried call). The same ``ref`` with other lines,
    or after its reservation was released or fulfilled, raises ``RefInUse``.
    """
    _lock_ref(session, ref)
    existing = reservations_of(session, ref=ref)
    if not existing:
        return reserve(session, ref=ref, lines=lines, ship_to=ship_to, warehouses=warehouses), False
    held: dict[str, int] = {}
    for alloc, _ in existing:
        held[alloc.sku] = held.get(alloc.sku, 0) + alloc.qty
    if held != dict(lines):
        raise RefInUse(f"ref {ref} was reserved already with other lines; use a new ref")
    if any(status != "active" for _, status in existing):
        raise RefInUse(f"ref {ref} was reserved and settled already; use a new ref")
    return [alloc for alloc, _ in existing], True


def _lock_ref(session: Session, ref: str) -> None:
    """Serialize calls for one reference, so two concurrent calls cannot both reserve it.

    PostgreSQL: a transaction-scoped advisory lock on the reference's hash, taken before any
    stock-row lock (and the only advisory lock taken with stock locks held, so lock order stays
    acyclic). SQLite: the write transaction is exclusive already.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(ref, 0))))


class UnknownReservation(NotFound):
    """Nothing was ever reserved under that reference."""

    code = "unknown_reservation"
