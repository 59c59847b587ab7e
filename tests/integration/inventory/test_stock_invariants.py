"""Random sequences of inventory operations on a real database keep the stock books balanced.

A Hypothesis state machine drives the inventory service (movements, counts, transfers,
reservations, releases, shipments), each call in its own unit of work, against SQLite and
PostgreSQL. A plain-Python model predicts which calls must be refused; after every step the
database must agree with the model and with itself: on-hand equals the ledger, reserved stays
within on-hand and equals the active reservations, and a refused call leaves no trace.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storekeeper.bootstrap import Container
from storekeeper.catalog import service as catalog_service
from storekeeper.db import Database
from storekeeper.errors import DomainError, InvalidRequest
from storekeeper.events.models import OutboxEvent
from storekeeper.inventory import domain
from storekeeper.inventory import ledger as inventory_ledger
from storekeeper.inventory import levels as inventory_levels
from storekeeper.inventory import reservations as inventory_reservations
from storekeeper.inventory import warehouses as inventory_warehouses
from storekeeper.inventory.domain import Allocation, InsufficientStock, Point
from storekeeper.inventory.models import Movement, Reservation, StockLevel

T = TypeVar("T")

SITES = {"BER": Point(52.52, 13.405), "HAM": Point(53.551, 9.993), "MUC": Point(48.137, 11.575)}
DESTINATIONS = [None, Point(53.079, 8.801), Point(48.366, 10.898), Point(52.52, 13.405)]

# Few examples of moderate length, derandomized: the same sequences run in CI and on a laptop.
STATEFUL = settings(
    max_examples=30,
    stateful_step_count=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

warehouses = st.sampled_from(sorted(SITES))
sku_index = st.sampled_from([0, 1])


class StockMachine(RuleBasedStateMachine):
    """Inventory operations on two fresh SKUs, checked against a model after every step."""

    reservations = Bundle("reservations")

    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db
        # Every example gets SKUs of its own: the database outlives the example.
        tag = uuid.uuid4().hex[:10]
        self.skus = [f"P{tag}-A", f"P{tag}-B"]
        with db.transaction() as session:
            for sku in self.skus:
                catalog_service.create(
                    session,
                    data={"sku": sku, "name": sku, "price_cents": 100, "currency": "EUR"},
                )
        keys = [(sku, code) for sku in self.skus for code in SITES]
        self.on_hand = dict.fromkeys(keys, 0)
        self.reserved = dict.fromkeys(keys, 0)
        self.active: dict[str, list[Allocation]] = {}

    # --- helpers ------------------------------------------------------------------------------

    def _available(self, sku: str, warehouse: str) -> int:
        return self.on_hand[sku, warehouse] - self.reserved[sku, warehouse]

    def _snapshot(self) -> tuple[Any, ...]:
        """Every row an inventory operation on this example's SKUs could touch."""
        with self.db.reading() as session:
            stock = session.execute(
                select(
                    StockLevel.sku,
                    StockLevel.warehouse_code,
                    StockLevel.on_hand,
                    StockLevel.reserved,
                    StockLevel.updated_at,
                )
                .where(StockLevel.sku.in_(self.skus))
                .order_by(StockLevel.sku, StockLevel.warehouse_code)
            ).all()
            movements = session.execute(
                select(func.count(), func.coalesce(func.sum(Movement.delta), 0)).where(
                    Movement.sku.in_(self.skus)
                )
            ).one()
            reservations = session.execute(
                select(Reservation.id, Reservation.status, Reservation.qty)
                .where(Reservation.sku.in_(self.skus))
                .order_by(Reservation.id)
            ).all()
            events = session.scalar(select(func.count()).select_from(OutboxEvent))
        return tuple(stock), tuple(movements), tuple(reservations), events

    def _attempt(
        self, operation: Callable[[Session], T], refused_by: type[DomainError] | None
    ) -> T | None:
        """Run ``operation`` in one unit of work; it must be refused exactly when predicted."""
        # Only a predicted refusal needs the before-picture; an unpredicted one fails anyway.
        before = self._snapshot() if refused_by is not None else None
        try:
            with self.db.transaction() as session:
                result = operation(session)
        except DomainError as exc:
            assert refused_by is not None, f"refused unexpectedly: {exc!r}"
            assert isinstance(exc, refused_by), f"expected {refused_by.__name__}, got {exc!r}"
            assert self._snapshot() == before, f"refused {exc!r} but left a partial effect"
            return None
        assert refused_by is None, f"expected {refused_by.__name__}, but it succeeded"
        return result

    # --- rules --------------------------------------------------------------------------------

    @initialize(receipts=st.lists(st.integers(0, 25), min_size=6, max_size=6))
    def receive_opening_stock(self, receipts: list[int]) -> None:
        """Start most examples with stock on the shelves, so that more operations can succeed."""
        for (sku, warehouse), qty in zip(self.on_hand, receipts, strict=True):
            if qty:
                self.record_movement(self.skus.index(sku), warehouse, qty, "receipt")

    @rule(
        index=sku_index,
        warehouse=warehouses,
        delta=st.integers(-15, 25).filter(bool),
        reason=st.sampled_from(sorted(inventory_ledger.MANUAL_REASONS)),
    )
    def record_movement(self, index: int, warehouse: str, delta: int, reason: str) -> None:
        sku = self.skus[index]
        fits = self._available(sku, warehouse) + delta >= 0
        level = self._attempt(
            lambda s: inventory_ledger.record_movement(
                s, sku=sku, warehouse=warehouse, delta=delta, reason=reason, ref="prop"
            ),
            refused_by=None if fits else InsufficientStock,
        )
        if level is not None:
            self.on_hand[sku, warehouse] += delta
            assert (level.on_hand, level.reserved) == (
                self.on_hand[sku, warehouse],
                self.reserved[sku, warehouse],
            )

    @rule(
        index=sku_index,
        warehouse=warehouses,
        counted=st.integers(0, 30),
        near_reserved=st.booleans(),
    )
    def record_count(self, index: int, warehouse: str, counted: int, near_reserved: bool) -> None:
        sku = self.skus[index]
        if near_reserved:
            # Counts just below, at or above what is reserved: the edge of BelowReserved.
            counted = max(0, self.reserved[sku, warehouse] + counted % 7 - 3)
        fits = counted >= self.reserved[sku, warehouse]
        level = self._attempt(
            lambda s: inventory_ledger.record_count(
                s, sku=sku, warehouse=warehouse, counted=counted
            ),
            refused_by=None if fits else inventory_ledger.BelowReserved,
        )
        if level is not None:
            self.on_hand[sku, warehouse] = counted
            assert level.on_hand == counted

    # ``target`` names a rule's output bundle in Hypothesis, hence ``destination``.
    @rule(index=sku_index, source=warehouses, destination=warehouses, qty=st.integers(1, 12))
    def transfer(self, index: int, source: str, destination: str, qty: int) -> None:
        sku = self.skus[index]
        refused_by: type[DomainError] | None = None
        if source == destination:
            refused_by = InvalidRequest
        elif self._available(sku, source) < qty:
            refused_by = InsufficientStock
        moved = self._attempt(
            lambda s: inventory_ledger.transfer(
                s, sku=sku, source=source, target=destination, qty=qty
            ),
            refused_by=refused_by,
        )
        if moved is not None:
            self.on_hand[sku, source] -= qty
            self.on_hand[sku, destination] += qty

    @rule(
        target=reservations,
        wanted=st.dictionaries(sku_index, st.integers(1, 15), min_size=1, max_size=2),
        ship_to=st.sampled_from(DESTINATIONS),
    )
    def reserve(self, wanted: dict[int, int], ship_to: Point | None) -> Any:
        lines = {self.skus[i]: qty for i, qty in wanted.items()}
        available = {sku: {code: self._available(sku, code) for code in SITES} for sku in self.skus}
        try:
            expected: list[Allocation] | None = domain.allocate(lines, available, SITES, ship_to)
        except InsufficientStock:
            expected = None
        ref = f"order:{uuid.uuid4()}"
        allocations = self._attempt(
            lambda s: inventory_reservations.reserve(s, ref=ref, lines=lines, ship_to=ship_to),
            refused_by=InsufficientStock if expected is None else None,
        )
        if allocations is None:
            return multiple()
        # The service must allocate from exactly the availability the model predicts.
        assert allocations == expected
        for alloc in allocations:
            self.reserved[alloc.sku, alloc.warehouse] += alloc.qty
        self.active[ref] = allocations
        return ref

    @rule(ref=reservations)
    def release(self, ref: str) -> None:
        held = self.active.pop(ref, [])
        released = self._attempt(
            lambda s: inventory_reservations.release(s, ref=ref), refused_by=None
        )
        assert released == sum(a.qty for a in held)
        for alloc in held:
            self.reserved[alloc.sku, alloc.warehouse] -= alloc.qty

    @rule(ref=reservations)
    def fulfil(self, ref: str) -> None:
        held = self.active.pop(ref, [])
        shipped = self._attempt(
            lambda s: inventory_reservations.fulfil(s, ref=ref), refused_by=None
        )
        assert shipped == sum(a.qty for a in held)
        for alloc in held:
            self.reserved[alloc.sku, alloc.warehouse] -= alloc.qty
            self.on_hand[alloc.sku, alloc.warehouse] -= alloc.qty

    # --- invariants ---------------------------------------------------------------------------

    @invariant()
    def books_balance(self) -> None:
        with self.db.reading() as session:
            levels = {
                (sku, level.warehouse): level
                for sku in self.skus
                for level in inventory_levels.stock_of(session, sku=sku)
            }
            ledger = inventory_levels.ledger_totals(session, skus=self.skus)
            active = {
                (sku, code): int(total)
                for sku, code, total in session.execute(
                    select(Reservation.sku, Reservation.warehouse_code, func.sum(Reservation.qty))
                    .where(Reservation.sku.in_(self.skus), Reservation.status == "active")
                    .group_by(Reservation.sku, Reservation.warehouse_code)
                )
            }
        assert set(levels) <= set(self.on_hand), f"stock in unknown places: {sorted(levels)}"
        for key in self.on_hand:
            level = levels.get(key)
            on_hand, reserved = (level.on_hand, level.reserved) if level else (0, 0)
            assert on_hand == ledger.get(key, 0), f"{key}: on-hand {on_hand} != ledger"
            assert 0 <= reserved <= on_hand, f"{key}: reserved {reserved}, on-hand {on_hand}"
            assert reserved == active.get(key, 0), f"{key}: reserved != active reservations"
            assert (on_hand, reserved) == (self.on_hand[key], self.reserved[key]), key


def test_random_inventory_operations_keep_stock_books_balanced(container: Container) -> None:
    db = container.db
    with db.transaction() as session:
        for code, site in SITES.items():
            inventory_warehouses.create_warehouse(
                session, code=code, name=code, lat=site.lat, lon=site.lon
            )

    class OnThisDatabase(StockMachine):
        def __init__(self) -> None:
            super().__init__(db)

    run_state_machine_as_test(OnThisDatabase, settings=STATEFUL)
