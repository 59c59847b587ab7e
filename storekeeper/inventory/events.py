"""Events the inventory context publishes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class StockChanged:
    """On-hand or reserved units of a SKU in a warehouse changed; carries the new levels and,
    for a ledger movement, the movement itself (id, delta, unit cost, time)."""

    type: ClassVar[str] = "stock.changed"
    aggregate_type: ClassVar[str] = "stock"

    sku: str
    warehouse: str
    on_hand: int
    reserved: int
    reason: str
    ref: str | None
    # The movement behind the change (none for a reservation or a release, which move no
    # stock). Added for the reporting context's ledger read model; defaults keep events stored
    # before them decodable.
    delta: int = 0
    movement_id: int | None = None
    unit_cost_cents: int | None = None
    moved_at: str | None = None  # ISO 8601, UTC: the ledger row's created_at

    @property
    def aggregate_id(self) -> str:
        """SKU and warehouse: events of one stock level stay in order."""
        return f"{self.sku}@{self.warehouse}"
