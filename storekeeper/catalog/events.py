"""Events the catalog publishes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class ProductChanged:
    """A product was created, edited or archived; ``version`` orders the edits of one SKU."""

    type: ClassVar[str] = "product.changed"
    aggregate_type: ClassVar[str] = "product"

    sku: str
    version: int
    change: str

    @property
    def aggregate_id(self) -> str:
        """The SKU."""
        return self.sku
