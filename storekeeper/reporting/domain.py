"""Moving average cost: the pure rules the valuation report and the period snapshots replay.

A series (SKU, warehouse) holds ``on_hand`` units worth ``value_cents``; its average unit cost
is ``value_cents / on_hand``. Movements of one SKU are replayed in ledger order:

- a receipt with ``unit_cost_cents`` adds ``delta * unit_cost_cents``;
- a transfer in adds exactly the value its transfer out took from the source (the source's
  average cost travels with the units);
- any other increase (a receipt without cost, a count or correction up, a returned sale) comes
  in at the series' current average, so it leaves the average unchanged (0 into an empty series);
- every decrease (sale, damage, count or correction down, transfer out) takes
  ``floor(value * units / on_hand)``, so the average stays what it was; the last unit takes the
  rest, and an empty series is worth 0.

Integer cents throughout: the same ledger always values the same, on every database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Series = tuple[str, str]
"""(SKU, warehouse)."""
MoveRow = tuple[str, str, int, str, str | None, int | None, int]
"""A movement as a row: (SKU, warehouse, delta, reason, ref, unit cost in cents, movement id);
the id orders the ledger, the rules do not read it."""


@dataclass(frozen=True, slots=True)
class Move:
    """What the rules need of one ledger movement."""

    sku: str
    warehouse: str
    delta: int
    reason: str
    ref: str | None
    unit_cost_cents: int | None


@dataclass(slots=True)
class Position:
    """Units of a series and what they are worth."""

    on_hand: int = 0
    value_cents: int = 0

    @property
    def average_cents(self) -> int:
        """The average unit cost, rounded half up to a cent (0 for an empty series)."""
        return average_cents(self.on_hand, self.value_cents)


def average_cents(on_hand: int, value_cents: int) -> int:
    """The average unit cost of ``on_hand`` units worth ``value_cents``, rounded half up to a
    cent (0 for an empty series)."""
    if on_hand <= 0:
        return 0
    return (2 * value_cents + on_hand) // (2 * on_hand)


class Book:
    """Positions of many series, replaying movements in ledger order."""

    def __init__(
        self,
        positions: dict[Series, Position] | None = None,
        *,
        opening: Mapping[Series, tuple[int, int]] | None = None,
    ) -> None:
        self.positions: dict[Series, Position] = positions or {}
        # (units, value) a series starts from when a movement first touches it and it has no
        # position yet: a snapshot's rows, of which a replay touches only some.
        self._opening: Mapping[Series, tuple[int, int]] = opening or {}
        # Value taken by each transfer out, waiting for its transfer in: (ref, SKU) → cents.
        self._in_transit: dict[tuple[str | None, str], int] = {}

    def apply(self, move: Move) -> None:
        """Apply one movement by the rules above."""
        self.apply_row(
            (move.sku, move.warehouse, move.delta, move.reason, move.ref, move.unit_cost_cents, 0)
        )

    def apply_row(self, row: MoveRow) -> None:
        """:meth:`apply` of a movement as a plain row (what a query answers): a valuation
        replays tens of thousands, so no object is made for each."""
        sku, warehouse, delta, reason, ref, unit_cost_cents, _ = row
        position = self.positions.get((sku, warehouse))
        if position is None:
            units, value = self._opening.get((sku, warehouse), (0, 0))
            position = self.positions[(sku, warehouse)] = Position(units, value)
        if delta < 0:
            if position.on_hand <= -delta:
                taken = position.value_cents
            else:
                taken = position.value_cents * -delta // position.on_hand
            position.value_cents -= taken
            if reason == "transfer":
                self._in_transit[(ref, sku)] = taken
        elif delta > 0:
            carried = self._in_transit.pop((ref, sku), None)
            if reason == "receipt" and unit_cost_cents is not None:
                position.value_cents += delta * unit_cost_cents
            elif reason == "transfer" and carried is not None:
                position.value_cents += carried
            elif position.on_hand > 0:
                position.value_cents += position.value_cents * delta // position.on_hand
        position.on_hand += delta
        if position.on_hand <= 0:
            position.value_cents = 0

    def apply_rows(self, rows: Iterable[MoveRow]) -> Book:
        """Apply movement rows in order; returns itself."""
        apply_row = self.apply_row
        for row in rows:
            apply_row(row)
        return self

    def apply_all(self, moves: Iterable[Move]) -> Book:
        """Apply movements in order; returns itself."""
        for move in moves:
            self.apply(move)
        return self
