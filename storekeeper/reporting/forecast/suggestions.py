"""Purchase suggestions: series whose available stock is below the reorder point the forecast
set, and how many units to order (the console page of that name)."""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy.orm import Session

from storekeeper.catalog import service as catalog_service
from storekeeper.inventory import levels
from storekeeper.reporting.forecast.service import MAX_PAGE, ReorderPointView, list_reorder_points


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A series whose available stock is below its reorder point, and what to order."""

    point: ReorderPointView
    name: str
    available: int
    order_up_to: int

    @property
    def quantity(self) -> int:
        """Units to order: up to the order-up-to level from what is available."""
        return max(0, self.order_up_to - self.available)


def purchase_suggestions(
    session: Session, *, cover_days: int, warehouses: Collection[str] | None = None
) -> list[Suggestion]:
    """Every series of a product on sale whose available stock is below its reorder point,
    largest shortfall first.

    It orders up to ``reorder point + ceil(forecast * cover_days)``: enough to get back above
    the reorder point and last ``cover_days`` more days of forecast demand. Available stock
    comes from the inventory service (on-hand less reserved); no stock row reads as zero.
    """
    suggestions: list[Suggestion] = []
    after: tuple[str, str] | None = None
    while True:
        page, after = list_reorder_points(
            session, warehouses=warehouses, after=after, limit=MAX_PAGE
        )
        by_warehouse: dict[str, list[ReorderPointView]] = {}
        for point in page:
            by_warehouse.setdefault(point.warehouse, []).append(point)
        names = catalog_service.names_on_sale(session, skus={p.sku for p in page})
        for warehouse, points in by_warehouse.items():
            available = _available(session, warehouse, [p.sku for p in points])
            for point in points:
                units = available.get(point.sku, 0)
                if point.sku in names and units < point.reorder_point:
                    up_to = point.reorder_point + math.ceil(
                        round(point.forecast_daily * cover_days, 9)
                    )
                    suggestions.append(Suggestion(point, names[point.sku], units, up_to))
        if after is None:
            break
    suggestions.sort(
        key=lambda s: (s.available - s.point.reorder_point, s.point.warehouse, s.point.sku)
    )
    return suggestions


def _available(session: Session, warehouse: str, skus: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    after_sku: str | None = None
    while True:
        page, after_sku = levels.list_levels(
            session,
            warehouse=warehouse,
            skus=skus,
            after_sku=after_sku,
            limit=levels.MAX_LEVELS_PAGE,
        )
        found.update({row.sku: row.available for row in page})
        if after_sku is None:
            return found
