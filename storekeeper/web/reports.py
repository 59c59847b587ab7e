"""Console pages: the reports, each a chart, a table and a CSV link, for managers and admins.

The same service calls as ``storekeeper.reporting.api`` with the same parameters; the CSV link
is the page's own URL with ``format=csv``. Charts are drawn by ``static/reports.js`` (uPlot)
from JSON in the page; the table below holds the same numbers, so nothing is lost without
script.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from storekeeper.accounts.domain import STAFF, Principal
from storekeeper.api.deps import DatabaseDep, SettingsDep
from storekeeper.api.downloads import rows_csv
from storekeeper.catalog.schemas import Sku
from storekeeper.reporting import service, stock
from storekeeper.web.session import allowed
from storekeeper.web.templating import render

router = APIRouter(include_in_schema=False)
Staff = Annotated[Principal, Depends(allowed(STAFF))]
Day = Annotated[date | None, Query(ge=date(1970, 1, 1), le=date(9998, 12, 31))]
FormatQuery = Annotated[Literal["html", "csv"], Query(alias="format")]
CHART_BARS = 40
"""Bars a chart shows at most (the table has every row)."""

TITLES = {
    "sales": "Sales",
    "dead-stock": "Dead stock",
    "low-stock": "Low stock",
    "stock-history": "Stock history",
    "valuation": "Valuation",
    "abc": "ABC analysis",
}


@dataclass(frozen=True, slots=True)
class Column:
    """A table column: the row attribute, its heading, and how to show it."""

    name: str
    label: str
    kind: Literal["text", "num", "money", "when", "pct"] = "text"


def _page(
    request: Request,
    principal: Principal,
    *,
    report: str,
    rows: Sequence[Any],
    row_type: type[Any],
    columns: list[Column],
    chart: dict[str, Any] | None,
    params: dict[str, Any],
    fmt: str,
    summary: str,
    **context: Any,
) -> Response:
    if fmt == "csv":
        return rows_csv(f"{report}.csv", row_type, rows)
    shown = {k: v for k, v in params.items() if v is not None}
    return render(
        request,
        "reports/report.html",
        principal,
        title=TITLES[report],
        report=report,
        reports=TITLES,
        rows=rows,
        columns=columns,
        chart=chart,
        params=shown,
        summary=summary,
        csv_url=f"{request.url.path}?{urlencode({**shown, 'format': 'csv'})}",
        **context,
    )


def _bars(labels: list[str], label: str, values: list[float], unit: str) -> dict[str, Any]:
    return {
        "kind": "bars",
        "labels": labels[:CHART_BARS],
        "unit": unit,
        "series": [{"label": label, "values": values[:CHART_BARS]}],
    }


def _place_bars(rows: Sequence[Any], label: str, value: str, unit: str) -> dict[str, Any]:
    """Bars of one number per stock row, labelled ``SKU@WAREHOUSE``."""
    return _bars(
        [f"{r.sku}@{r.warehouse}" for r in rows], label, [getattr(r, value) for r in rows], unit
    )


_PLACE = [Column("sku", "SKU"), Column("warehouse", "Warehouse")]


@router.get("/reports")
def index(principal: Staff) -> Response:
    """The first report."""
    return RedirectResponse("/reports/sales", status_code=303)


@router.get("/reports/sales")
def sales(
    request: Request,
    principal: Staff,
    db: DatabaseDep,
    since: Day = None,
    until: Day = None,
    by: Literal["product", "warehouse"] = "product",
    top: Annotated[int, Query(ge=1, le=1000)] = 20,
    format_: FormatQuery = "html",
) -> Response:
    """Top sellers over a period, by product or warehouse."""
    since, until = service.period(since, until)
    with db.reading() as session:
        rows = service.sales(session, since=since, until=until, by=by, top=top)
    labels = [f"{r.key} ({r.currency})" for r in rows]
    return _page(
        request,
        principal,
        report="sales",
        rows=rows,
        row_type=service.SalesRow,
        columns=[
            Column("key", "SKU" if by == "product" else "Warehouse"),
            Column("name", "Name"),
            Column("units", "Units sold", "num"),
            Column("value_cents", "Value", "money"),
            Column("currency", "Currency"),
        ],
        chart=_bars(labels, "Value", [r.value_cents / 100 for r in rows], "value"),
        params={"since": since, "until": until, "by": by, "top": top},
        fmt=format_,
        summary=f"Top {top} {'products' if by == 'product' else 'warehouses'} by sales value, "
        f"{since} to {until}.",
    )


@router.get("/reports/dead-stock")
def dead_stock(
    request: Request,
    principal: Staff,
    db: DatabaseDep,
    days: Annotated[int | None, Query(ge=1, le=36500)] = None,
    format_: FormatQuery = "html",
) -> Response:
    """Stock with no sale in ``days`` days, or never sold."""
    with db.reading() as session:
        rows = service.dead_stock(session, days=days)
    return _page(
        request,
        principal,
        report="dead-stock",
        rows=rows,
        row_type=service.DeadStockRow,
        columns=[
            *_PLACE,
            Column("on_hand", "On hand", "num"),
            Column("last_sold_at", "Last sold", "when"),
        ],
        chart=_place_bars(rows, "On hand", "on_hand", "units"),
        params={"days": days},
        fmt=format_,
        summary=f"Stock with no sale in the last {days} days." if days else "Stock never sold.",
    )


@router.get("/reports/low-stock")
def low_stock(
    request: Request,
    principal: Staff,
    db: DatabaseDep,
    settings: SettingsDep,
    format_: FormatQuery = "html",
) -> Response:
    """Stock whose available units are below the reorder point."""
    with db.reading() as session:
        rows = service.low_stock(session, threshold=settings.low_stock_units)
    return _page(
        request,
        principal,
        report="low-stock",
        rows=rows,
        row_type=service.LowStockRow,
        columns=[
            *_PLACE,
            Column("on_hand", "On hand", "num"),
            Column("reserved", "Reserved", "num"),
            Column("available", "Available", "num"),
            Column("reorder_point", "Reorder point", "num"),
        ],
        chart=_place_bars(rows, "Available", "available", "units"),
        params={},
        fmt=format_,
        summary=f"Available below the reorder point ({settings.low_stock_units} units).",
    )


@router.get("/reports/stock-history")
def stock_history_form(
    principal: Staff, sku: Annotated[Sku, Query()], since: Day = None, until: Day = None
) -> Response:
    """The history page of the SKU typed into the form."""
    query = urlencode({k: v for k, v in {"since": since, "until": until}.items() if v})
    return RedirectResponse(
        f"/reports/stock-history/{quote(sku, safe='')}?{query}", status_code=303
    )


@router.get("/reports/stock-history/{sku}")
def stock_history(
    request: Request,
    principal: Staff,
    db: DatabaseDep,
    sku: Annotated[Sku, Path()],
    since: Day = None,
    until: Day = None,
    format_: FormatQuery = "html",
) -> Response:
    """A SKU's movements with each warehouse's running on-hand."""
    since, until = service.period(since, until)
    with db.reading() as session:
        opening, rows, closing = stock.stock_history(session, sku=sku, since=since, until=until)
    warehouses = sorted(opening.keys() | {r.warehouse for r in rows})
    level = dict(opening)
    lines: dict[str, list[int]] = {wh: [] for wh in warehouses}
    for row in rows:
        level[row.warehouse] = row.on_hand
        for wh in warehouses:
            lines[wh].append(level.get(wh, 0))
    chart = {
        "kind": "time",
        "x": [int(r.moved_at.timestamp()) for r in rows],
        "unit": "units",
        "series": [{"label": wh, "values": lines[wh]} for wh in warehouses],
    }
    return _page(
        request,
        principal,
        report="stock-history",
        rows=rows,
        row_type=stock.HistoryRow,
        columns=[
            Column("moved_at", "When", "when"),
            Column("warehouse", "Warehouse"),
            Column("reason", "Reason"),
            Column("delta", "Change", "num"),
            Column("on_hand", "On hand after", "num"),
            Column("ref", "Reference"),
        ],
        chart=chart if rows else None,
        params={"since": since, "until": until},
        fmt=format_,
        summary=f"{sku}: on hand before {since}: "
        + (", ".join(f"{wh} {u}" for wh, u in sorted(opening.items())) or "none")
        + f"; at the end of {until}: "
        + (", ".join(f"{wh} {u}" for wh, u in sorted(closing.items())) or "none")
        + ".",
        sku=sku,
    )


@router.get("/reports/valuation")
def valuation(
    request: Request,
    principal: Staff,
    db: DatabaseDep,
    at: Day = None,
    format_: FormatQuery = "html",
) -> Response:
    """Stock value at a date by moving average cost."""
    at = at or service.today()
    with db.reading() as session:
        rows = stock.valuation(session, at=at)
    total = sum(r.value_cents for r in rows)
    by_value = sorted(rows, key=lambda r: -r.value_cents)
    return _page(
        request,
        principal,
        report="valuation",
        rows=rows,
        row_type=stock.ValuationRow,
        columns=[
            *_PLACE,
            Column("on_hand", "On hand", "num"),
            Column("average_cost_cents", "Average cost", "money"),
            Column("value_cents", "Value", "money"),
        ],
        chart=_bars(
            [f"{r.sku}@{r.warehouse}" for r in by_value],
            "Value",
            [r.value_cents / 100 for r in by_value],
            "value",
        ),
        params={"at": at},
        fmt=format_,
        summary=f"Stock worth {total / 100:,.2f} at the end of {at} (moving average cost).",
    )


@router.get("/reports/abc")
def abc(
    request: Request,
    principal: Staff,
    db: DatabaseDep,
    since: Day = None,
    until: Day = None,
    format_: FormatQuery = "html",
) -> Response:
    """Products by sales value, classed A (top 80%), B (next 15%), C (the rest)."""
    since, until = service.period(since, until)
    with db.reading() as session:
        rows = service.abc(session, since=since, until=until)
    return _page(
        request,
        principal,
        report="abc",
        rows=rows,
        row_type=service.AbcRow,
        columns=[
            Column("sku", "SKU"),
            Column("abc_class", "Class"),
            Column("units", "Units sold", "num"),
            Column("value_cents", "Value", "money"),
            Column("share_pct", "Share", "pct"),
            Column("cumulative_pct", "Cumulative share", "pct"),
            Column("currency", "Currency"),
        ],
        chart=_bars(
            [f"{r.sku} ({r.abc_class})" for r in rows],
            "Cumulative share",
            [r.cumulative_pct for r in rows],
            "percent",
        ),
        params={"since": since, "until": until},
        fmt=format_,
        summary=f"A: the first 80% of sales value, B: the next 15%, C: the rest; {since} to "
        f"{until}.",
    )
