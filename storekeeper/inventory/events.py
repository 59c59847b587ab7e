"""Events the inventory context publishes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class StockChanged:
    """On-hand or reserved units of a SKU in a warehouse changed; carries the new levels."""

    type: ClassVar[str] = "stock.changed"
    aggregate_type: ClassVar[str] = "stock"

    sku: str
    warehouse: str
    on_hand: int
    reserved: int
    reason: str
    ref: str | None

    @property
    def aggregate_id(self) -> str:
        """SKU and warehouse: events of one stock level stay in order."""
        return f"{self.sku}@{self.warehouse}"
