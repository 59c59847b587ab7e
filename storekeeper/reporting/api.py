"""HTTP routes of the reporting context: the reports, as JSON or (``?format=csv``) CSV.

Managers and admins only. Dates are UTC days; a period is ``since``..``until`` inclusive.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BeforeValidator

from storekeeper.accounts.domain import STAFF, Principal
from storekeeper.api.deps import DatabaseDep, SettingsDep, require
from storekeeper.api.downloads import rows_csv
from storekeeper.api.errors import responses
from storekeeper.catalog.schemas import Sku
from storekeeper.inventory.schemas import WarehouseCode
from storekeeper.reporting import service, stock
from storekeeper.reporting.forecast.api import router as forecast_router
from storekeeper.reporting.schemas import (
    AbcReport,
    DeadStockReport,
    LowStockReport,
    SalesReport,
    StockHistoryReport,
    ValuationReport,
)

router = APIRouter(prefix="/reports", tags=["reports"])
Manager = Annotated[Principal, Depends(require(STAFF))]


def _iso_day(value: object) -> object:
    """Refuse what pydantic would otherwise read as a date: ``0`` (a Unix time), not a day."""
    if isinstance(value, str) and not _ISO_DAY.fullmatch(value):
        raise ValueError("a day is written YYYY-MM-DD")
    return value


_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Bounded so that a day after ``until`` is still a date (no overflow into a 500).
Day = Annotated[date, BeforeValidator(_iso_day), Query(ge=date(1970, 1, 1), le=date(9998, 12, 31))]
FormatQuery = Annotated[
    Literal["json", "csv"], Query(alias="format", description="`csv` downloads the rows")
]
ERRORS = responses(401, 403, 422)


@router.get("/sales", response_model=SalesReport, responses=ERRORS)
def sales(
    _: Manager,
    db: DatabaseDep,
    since: Day | None = None,
    until: Day | None = None,
    by: Literal["product", "warehouse"] = "product",
    top: Annotated[int, Query(ge=1, le=1000)] = 20,
    format_: FormatQuery = "json",
) -> Any:
    """Units and value sold per product or warehouse over a period (default the last 30 days),
    the ``top`` first by value."""
    since, until = service.period(since, until)
    with db.reading() as session:
        rows = service.sales(session, since=since, until=until, by=by, top=top)
    if format_ == "csv":
        return rows_csv(f"sales-{since}-{until}.csv", service.SalesRow, rows)
    return {"since": since, "until": until, "by": by, "top": top, "rows": rows}


@router.get("/dead-stock", response_model=DeadStockReport, responses=ERRORS)
def dead_stock(
    _: Manager,
    db: DatabaseDep,
    days: Annotated[int | None, Query(ge=1, le=36500)] = None,
    format_: FormatQuery = "json",
) -> Any:
    """Stock with no sale in the last ``days`` days, or never sold when ``days`` is left out."""
    with db.reading() as session:
        rows = service.dead_stock(session, days=days)
    if format_ == "csv":
        return rows_csv("dead-stock.csv", service.DeadStockRow, rows)
    return {"days": days, "rows": rows}


@router.get("/low-stock", response_model=LowStockReport, responses=ERRORS)
def low_stock(
    _: Manager,
    db: DatabaseDep,
    settings: SettingsDep,
    warehouse: Annotated[WarehouseCode | None, Query()] = None,
    format_: FormatQuery = "json",
) -> Any:
    """Series whose available units are below the reorder point
    (``STOREKEEPER_LOW_STOCK_UNITS`` until per-series reorder points exist)."""
    with db.reading() as session:
        rows = service.low_stock(session, threshold=settings.low_stock_units, warehouse=warehouse)
    if format_ == "csv":
        return rows_csv("low-stock.csv", service.LowStockRow, rows)
    return {"rows": rows}


@router.get(
    "/stock-history/{sku}", response_model=StockHistoryReport, responses=responses(401, 403, 422)
)
def stock_history(
    _: Manager,
    db: DatabaseDep,
    sku: Annotated[Sku, Path()],
    since: Day | None = None,
    until: Day | None = None,
    format_: FormatQuery = "json",
) -> Any:
    """A SKU's movements over a period with each warehouse's running on-hand, and its on-hand
    per warehouse before ``since`` and at the end of ``until`` (on-hand as of any date)."""
    since, until = service.period(since, until)
    with db.reading() as session:
        opening, rows, closing = stock.stock_history(session, sku=sku, since=since, until=until)
    if format_ == "csv":
        return rows_csv(f"stock-history-{sku}.csv", stock.HistoryRow, rows)
    return {
        "sku": sku,
        "since": since,
        "until": until,
        "opening": opening,
        "closing": closing,
        "rows": rows,
    }


@router.get("/valuation", response_model=ValuationReport, responses=ERRORS)
def valuation(
    _: Manager,
    db: DatabaseDep,
    at: Day | None = None,
    format_: FormatQuery = "json",
) -> Any:
    """Units and value of every series at the end of ``at`` (default today), by moving
    average cost (docs/reports.md)."""
    at = at or service.today()
    with db.reading() as session:
        rows = stock.valuation(session, at=at)
    if format_ == "csv":
        return rows_csv(f"valuation-{at}.csv", stock.ValuationRow, rows)
    return {"at": at, "total_value_cents": sum(r.value_cents for r in rows), "rows": rows}


@router.get("/abc", response_model=AbcReport, responses=ERRORS)
def abc(
    _: Manager,
    db: DatabaseDep,
    since: Day | None = None,
    until: Day | None = None,
    format_: FormatQuery = "json",
) -> Any:
    """Products by sales value over a period (default the last 30 days): A the first 80% of
    the value, B the next 15%, C the rest."""
    since, until = service.period(since, until)
    with db.reading() as session:
        rows = service.abc(session, since=since, until=until)
    if format_ == "csv":
        return rows_csv(f"abc-{since}-{until}.csv", service.AbcRow, rows)
    return {"since": since, "until": until, "rows": rows}


# The forecast's reorder points are a report too: /reports/reorder-points.
router.include_router(forecast_router)
