"""Response bodies of the reports API (the CSV export has the same columns as ``rows``)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict


class _Row(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class SalesRowRead(_Row):
    """Units and value sold of one product or warehouse, in one currency."""

    key: str
    name: str
    currency: str
    units: int
    value_cents: int


class SalesReport(BaseModel):
    """Top sellers over a period."""

    since: date
    until: date
    by: str
    top: int
    rows: list[SalesRowRead]


class DeadStockRowRead(_Row):
    """Stock with no sale since the cut-off; ``last_sold_at`` null when never sold."""

    sku: str
    warehouse: str
    on_hand: int
    last_sold_at: datetime | None


class DeadStockReport(BaseModel):
    """Series with units and no sale in ``days`` days (null: never)."""

    days: int | None
    rows: list[DeadStockRowRead]


class LowStockRowRead(_Row):
    """A series whose available units are below its reorder point."""

    sku: str
    warehouse: str
    on_hand: int
    reserved: int
    available: int
    reorder_point: int


class LowStockReport(BaseModel):
    """Series below their reorder point, lowest first."""

    rows: list[LowStockRowRead]


class HistoryRowRead(_Row):
    """A movement and the warehouse's on-hand after it."""

    movement_id: int
    moved_at: datetime
    warehouse: str
    delta: int
    reason: str
    ref: str | None
    on_hand: int


class StockHistoryReport(BaseModel):
    """A SKU's movements with running on-hand, and on-hand per warehouse at both ends."""

    sku: str
    since: date
    until: date
    opening: dict[str, int]
    closing: dict[str, int]
    rows: list[HistoryRowRead]


class ValuationRowRead(_Row):
    """Units of a series at the date, their average unit cost and value."""

    sku: str
    warehouse: str
    on_hand: int
    average_cost_cents: int
    value_cents: int


class ValuationReport(BaseModel):
    """Stock value at the end of ``at`` by moving average cost."""

    at: date
    total_value_cents: int
    rows: list[ValuationRowRead]


class AbcRowRead(_Row):
    """A product's sales value, share, running share and class."""

    sku: str
    currency: str
    units: int
    value_cents: int
    share_pct: float
    cumulative_pct: float
    abc_class: str


class AbcReport(BaseModel):
    """Products by sales value over a period: A the top 80%, B the next 15%, C the rest."""

    since: date
    until: date
    rows: list[AbcRowRead]
