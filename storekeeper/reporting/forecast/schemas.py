"""Response bodies of the reorder-point report."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class ReorderPointRead(BaseModel):
    """The forecast of one (SKU, warehouse) series and the stock level to reorder at."""

    model_config = ConfigDict(from_attributes=True)

    sku: str
    warehouse: str
    reorder_point: int = Field(description="Reorder when available stock falls below this.")
    safety_stock: int = Field(description="Units held against forecast error over the lead time.")
    forecast_daily: float = Field(description="Forecast units sold per day.")
    mae: float | None = Field(description="Backtest mean absolute error, units per day.")
    mase: float | None = Field(
        description="MAE over the in-sample naive forecast's MAE (< 1: better than naive)."
    )
    method: str = Field(description="The method the backtest chose, e.g. sba(0.1).")
    service_level: float
    lead_time_days: int
    censored_days: int = Field(description="Days left out: stocked out with nothing sold.")
    computed_at: datetime


class ReorderPointPage(BaseModel):
    """One page of reorder points; pass ``next_cursor`` back as ``cursor`` for the next."""

    items: list[ReorderPointRead]
    next_cursor: str | None
