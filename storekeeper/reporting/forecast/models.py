"""Tables of the demand forecast: the reorder point each series got from its last run."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from storekeeper.db import Base


class ReorderPoint(Base):
    """One (SKU, warehouse) series: its forecast, backtest error, safety stock, reorder point.

    ``forecast_daily`` is a float (double precision on PostgreSQL, REAL on SQLite): a slow
    mover sells 0.0004 units a day, which integer thousandths would round to nothing, and the
    number is an estimate, never money. Units to hold (``safety_stock``, ``reorder_point``)
    are whole units, rounded up.
    """

    __tablename__ = "reporting_reorder_point"
    __table_args__ = (Index("ix_reporting_reorder_point_warehouse", "warehouse", "sku"),)

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    warehouse: Mapped[str] = mapped_column(String(32), primary_key=True)
    reorder_point: Mapped[int] = mapped_column(BigInteger)
    safety_stock: Mapped[int] = mapped_column(BigInteger)
    forecast_daily: Mapped[float] = mapped_column(Float)
    mae: Mapped[float | None] = mapped_column(Float)
    mase: Mapped[float | None] = mapped_column(Float)
    method: Mapped[str] = mapped_column(String(32))
    service_level: Mapped[float] = mapped_column(Float)
    lead_time_days: Mapped[int]
    censored_days: Mapped[int]
    computed_at: Mapped[datetime]
