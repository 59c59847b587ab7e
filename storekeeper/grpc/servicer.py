"""``storekeeper.inventory.v1.Inventory``: thin handlers over the inventory context's service.

Like the HTTP views, each handler checks the caller, validates the request, opens one unit of
work, calls the service module and turns the result into a message; domain errors propagate to
``interceptors.ErrorInterceptor``. Who may do what mirrors the HTTP API (docs/grpc.md):

- ``GetStock`` and ``WatchStock``: stock handlers (admin, manager, clerk) as for
  ``GET /stock/{sku}``, and devices, limited to the warehouse of their bound scope;
- ``Reserve`` and ``Release``: stock handlers; a clerk reserves only from, and releases only
  reservations in, the warehouses assigned to them.

References chosen by gRPC callers are filed as ``grpc:<ref>``, apart from the ``order:<id>``
references of orders: a gRPC caller can never release an order's stock.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta

import grpc
from pydantic import TypeAdapter, ValidationError

from storekeeper.accounts import policy, security
from storekeeper.accounts.authentication import Authenticator
from storekeeper.accounts.domain import DEVICES, STOCK_HANDLERS, Principal, Role
from storekeeper.catalog.schemas import Sku
from storekeeper.db import Database, utcnow
from storekeeper.errors import InvalidRequest, PermissionDenied
from storekeeper.grpc import watch
from storekeeper.grpc.auth import authenticate, bearer_token
from storekeeper.grpc.gen import inventory_pb2 as pb
from storekeeper.grpc.gen.inventory_pb2_grpc import InventoryServicer
from storekeeper.grpc.interceptors import Overloaded
from storekeeper.inventory import levels as inventory_levels
from storekeeper.inventory import reservations as inventory_reservations
from storekeeper.inventory.domain import Allocation, Point, merge_lines
from storekeeper.inventory.schemas import MAX_RESERVATION_TTL_S, WarehouseCode

REF_PREFIX = inventory_reservations.RefCaller.GRPC.value
MAX_LINES = 100  # as POST /orders
MAX_QTY = 100_000  # per line, as POST /orders
MAX_WATCHED_SKUS = 1000
_SKU: TypeAdapter[str] = TypeAdapter(Sku)
_WAREHOUSE: TypeAdapter[str] = TypeAdapter(WarehouseCode)
_REF_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:/-")
READERS = STOCK_HANDLERS | DEVICES
_GRPC = inventory_reservations.RefCaller.GRPC


class InventoryService(InventoryServicer):
    """The gRPC inventory service over one database."""

    def __init__(
        self,
        *,
        db: Database,
        authenticator: Authenticator,
        max_watchers: int,
        watch_poll_s: float = 0.2,
        recheck_s: float = 30.0,
        max_watches_per_account: int = 10,
    ) -> None:
        self._authenticator = authenticator
        self._db = db
        self._watch_poll_s = watch_poll_s
        self._recheck_s = recheck_s
        # One account's share of the watch streams: one clerk must not hold them all.
        self._max_watches_per_account = max_watches_per_account
        self._watches_of: dict[uuid.UUID, int] = {}
        self._watches_lock = threading.Lock()
        # Each open stream holds one of the server's threads: cap them, so that watchers can
        # never starve GetStock, Reserve and Release of threads.
        self._watchers = threading.BoundedSemaphore(max_watchers)
        self.stopping = threading.Event()
        """Set when the server stops: open ``WatchStock`` streams end."""

    def GetStock(  # noqa: N802
        self, request: pb.GetStockRequest, context: grpc.ServicerContext
    ) -> pb.Stock:
        """On-hand, reserved and available stock of a SKU, in total and per warehouse."""
        who = authenticate(self._authenticator, context, READERS)
        sku = _valid(_SKU, request.sku, "sku")
        with self._db.reading() as session:
            totals = inventory_levels.stock_totals(
                session, sku=sku, warehouse=_device_warehouse(who)
            )
        return pb.Stock(
            sku=totals.sku,
            on_hand=totals.on_hand,
            reserved=totals.reserved,
            available=totals.available,
            warehouses=[
                pb.Level(
                    warehouse=level.warehouse,
                    on_hand=level.on_hand,
                    reserved=level.reserved,
                    available=level.available,
                )
                for level in totals.warehouses
            ],
        )

    def Reserve(  # noqa: N802
        self, request: pb.ReserveRequest, context: grpc.ServicerContext
    ) -> pb.ReserveResponse:
        """Reserve ``lines`` under ``ref``, all or nothing; the same call again answers the same."""
        who = authenticate(self._authenticator, context, STOCK_HANDLERS)
        ref = _valid_ref(request.ref)
        wanted = _valid_lines(request.lines)
        ship_to = _valid_point(request.ship_to) if request.HasField("ship_to") else None
        requested = [_valid(_WAREHOUSE, code, "warehouses") for code in request.warehouses]
        within = _clerk_warehouses(who, requested)
        expires_at = _expiry(request.ttl_s)
        stored_ref = inventory_reservations.filed_ref(ref, caller=_GRPC)
        with self._db.transaction() as session:
            allocations, replayed = inventory_reservations.reserve_listed(
                session,
                ref=stored_ref,
                lines=wanted,
                ship_to=ship_to,
                warehouses=requested,
                within=within,
                expires_at=expires_at,
            )
            if replayed:  # a clerk replays only what is held at their warehouses
                policy.ensure_warehouses(who, {alloc.warehouse for alloc in allocations})
        return _reserved(ref, allocations, replayed=replayed)

    def Release(  # noqa: N802
        self, request: pb.ReleaseRequest, context: grpc.ServicerContext
    ) -> pb.ReleaseResponse:
        """Give back what is still reserved under ``ref``; 0 when it was released already."""
        who = authenticate(self._authenticator, context, STOCK_HANDLERS)
        ref = _valid_ref(request.ref)
        stored_ref = inventory_reservations.filed_ref(ref, caller=_GRPC)
        with self._db.transaction() as session:
            existing = inventory_reservations.reservations_of(session, ref=stored_ref)
            if not existing:
                raise inventory_reservations.UnknownReservation(
                    f"nothing was reserved under ref {ref}"
                )
            policy.ensure_warehouses(who, {alloc.warehouse for alloc, _ in existing})
            released = inventory_reservations.release(session, ref=stored_ref)
        return pb.ReleaseResponse(ref=ref, released=released)

    def WatchStock(  # noqa: N802
        self, request: pb.WatchStockRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.StockChanged]:
        """Every stock change committed from now on that the caller may see, as it commits."""
        who = authenticate(self._authenticator, context, READERS)
        if len(request.skus) > MAX_WATCHED_SKUS:
            raise InvalidRequest(f"watch at most {MAX_WATCHED_SKUS} SKUs", code="too_many_skus")
        skus = {_valid(_SKU, sku, "skus") for sku in request.skus}
        warehouse = (
            _valid(_WAREHOUSE, request.warehouse, "warehouse") if request.warehouse else None
        )
        device_warehouse = _device_warehouse(who)
        if device_warehouse is not None:
            policy.ensure_scope(who, f"warehouse:{warehouse or device_warehouse}")
            warehouse = device_warehouse
        claims = self._authenticator.verify(bearer_token(context.invocation_metadata()))
        self._take_account_share(who)
        if not self._watchers.acquire(blocking=False):
            self._give_account_share(who)
            raise Overloaded("too many open WatchStock streams on this server; retry later")
        try:
            since = watch.snapshot_now(self._db)
            # The first change may take a while: tell the client now that the stream is open
            # and every change committed from here on will come.
            context.send_initial_metadata(())
            for change in watch.tail_stock_changes(
                self._db,
                since=since,
                skus=skus,
                warehouse=warehouse,
                poll_s=self._watch_poll_s,
                keep_going=self._still_allowed(context, claims),
                stopping=self.stopping,
            ):
                yield pb.StockChanged(
                    sku=change.sku,
                    warehouse=change.warehouse,
                    on_hand=change.on_hand,
                    reserved=change.reserved,
                    available=change.on_hand - change.reserved,
                    reason=change.reason,
                    ref=change.ref or "",
                    position=change.position,
                )
        finally:
            self._watchers.release()
            self._give_account_share(who)

    def _still_allowed(
        self, context: grpc.ServicerContext, claims: security.TokenClaims
    ) -> Callable[[], bool]:
        """Whether the stream goes on: the client is there, and (re-proven every ``recheck_s``,
        as SSE does) its session is alive and its role may still watch; else 401/403's kin."""
        next_check = time.monotonic() + self._recheck_s

        def keep_going() -> bool:
            nonlocal next_check
            if time.monotonic() >= next_check:
                principal = self._authenticator.principal_now(claims)
                if not principal.has_role(READERS):
                    raise PermissionDenied(f"role {principal.role.value} may not watch stock")
                next_check = time.monotonic() + self._recheck_s
            return bool(context.is_active())

        return keep_going

    def _take_account_share(self, who: Principal) -> None:
        with self._watches_lock:
            held = self._watches_of.get(who.user_id, 0)
            if held >= self._max_watches_per_account:
                raise Overloaded(
                    f"this account already has {held} open WatchStock streams; close one first"
                )
            self._watches_of[who.user_id] = held + 1

    def _give_account_share(self, who: Principal) -> None:
        with self._watches_lock:
            left = self._watches_of.pop(who.user_id, 1) - 1
            if left:
                self._watches_of[who.user_id] = left


# --- validation -------------------------------------------------------------------------------


def _valid(adapter: TypeAdapter[str], value: str, field: str) -> str:
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        raise InvalidRequest(
            f"{field}: {value!r} is not valid ({exc.errors()[0]['msg']})", code="invalid_argument"
        ) from exc


def _valid_ref(ref: str) -> str:
    if not 1 <= len(ref) <= 120 or not set(ref) <= _REF_CHARS:
        raise InvalidRequest(
            "ref: 1-120 characters of letters, digits and . _ : / -", code="invalid_argument"
        )
    return ref


def _expiry(ttl_s: int) -> datetime | None:
    """When a reservation asked with ``ttl_s`` expires (0: never)."""
    if ttl_s == 0:
        return None
    if ttl_s > MAX_RESERVATION_TTL_S:
        raise InvalidRequest(
            f"ttl_s: at most {MAX_RESERVATION_TTL_S} seconds (0: no expiry)",
            code="invalid_argument",
        )
    return utcnow() + timedelta(seconds=ttl_s)


def _valid_lines(lines: Sequence[pb.Line]) -> dict[str, int]:
    if not 1 <= len(lines) <= MAX_LINES:
        raise InvalidRequest(f"lines: 1 to {MAX_LINES} lines", code="invalid_argument")
    for line in lines:
        if not 1 <= line.qty <= MAX_QTY:
            raise InvalidRequest(f"lines: qty must be 1 to {MAX_QTY}", code="invalid_argument")
    return merge_lines([(_valid(_SKU, line.sku, "lines.sku"), line.qty) for line in lines])


def _valid_point(point: pb.Point) -> Point:
    if not (
        math.isfinite(point.lat)
        and math.isfinite(point.lon)
        and -90 <= point.lat <= 90
        and -180 <= point.lon <= 180
    ):
        raise InvalidRequest(
            "ship_to: lat must be within ±90 and lon within ±180", code="invalid_argument"
        )
    return Point(point.lat, point.lon)


# --- rules ------------------------------------------------------------------------------------


def _device_warehouse(who: Principal) -> str | None:
    """The warehouse a device is bound to; ``None`` for people (they see every warehouse)."""
    if who.role is not Role.DEVICE:
        return None
    scope = who.scope or ""
    return scope.removeprefix("warehouse:") if scope.startswith("warehouse:") else ""


def _clerk_warehouses(who: Principal, requested: list[str]) -> frozenset[str] | None:
    """A clerk's warehouses, the only ones they reserve from; ``None`` for other roles.

    Raises unless the caller may reserve from every ``requested`` warehouse.
    """
    if who.role is Role.CLERK:
        if not who.warehouses:
            raise policy.WarehouseNotAssigned("you are not assigned to any warehouse")
        policy.ensure_warehouses(who, requested)
        return who.warehouses
    policy.ensure_warehouses(who, requested)
    return None


def _reserved(ref: str, allocations: list[Allocation], *, replayed: bool) -> pb.ReserveResponse:
    return pb.ReserveResponse(
        ref=ref,
        allocations=[
            pb.Allocation(sku=a.sku, warehouse=a.warehouse, qty=a.qty) for a in allocations
        ],
        replayed=replayed,
    )
