"""Console page: purchase suggestions — series whose available stock is below the reorder point
the demand forecast set, with how many units to order (managers and admins).

The rule lives in ``reporting.forecast.suggestions.purchase_suggestions``; this page pages and
renders it, and downloads it as CSV.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from storekeeper.accounts.domain import STAFF, Principal
from storekeeper.api.deps import DatabaseDep, SettingsDep
from storekeeper.api.downloads import csv_response
from storekeeper.inventory import warehouses as inventory_warehouses
from storekeeper.inventory.schemas import WarehouseCode
from storekeeper.reporting.forecast import service as forecast_service
from storekeeper.reporting.forecast import suggestions
from storekeeper.web.forms import Blank
from storekeeper.web.session import allowed
from storekeeper.web.templating import render

router = APIRouter(include_in_schema=False)
Buyer = Annotated[Principal, Depends(allowed(STAFF))]  # as GET /reports/reorder-points

PAGE_SIZE = 50
CSV_HEADER = [
    "sku",
    "name",
    "warehouse",
    "available",
    "reorder_point",
    "safety_stock",
    "forecast_daily",
    "order_up_to",
    "suggested_order",
    "method",
    "mase",
]


@router.get("/purchase-suggestions")
def index(
    request: Request,
    principal: Buyer,
    db: DatabaseDep,
    settings: SettingsDep,
    warehouse: Annotated[WarehouseCode | None, Blank, Query()] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    format_: Annotated[Literal["html", "csv"], Query(alias="format")] = "html",
) -> Response:
    """Series below their reorder point, largest shortfall first, a page at a time."""
    cover = settings.forecast_cover_days
    with db.reading() as session:
        found = suggestions.purchase_suggestions(
            session, cover_days=cover, warehouses=None if warehouse is None else [warehouse]
        )
        computed_at = forecast_service.last_computed_at(session)
        codes = [w.code for w in inventory_warehouses.list_warehouses(session)]
    if format_ == "csv":
        return csv_response(
            f"purchase-suggestions{'-' + warehouse if warehouse else ''}.csv",
            CSV_HEADER,
            (
                [
                    s.point.sku,
                    s.name,
                    s.point.warehouse,
                    s.available,
                    s.point.reorder_point,
                    s.point.safety_stock,
                    f"{s.point.forecast_daily:.3f}",
                    s.order_up_to,
                    s.quantity,
                    s.point.method,
                    "" if s.point.mase is None else f"{s.point.mase:.2f}",
                ]
                for s in found
            ),
        )
    start = (page - 1) * PAGE_SIZE
    shown = found[start : start + PAGE_SIZE]

    def url(**extra: object) -> str:
        pairs = {"warehouse": warehouse or "", **extra}
        query = urlencode({k: v for k, v in pairs.items() if v not in ("", None)})
        return f"/purchase-suggestions{'?' + query if query else ''}"

    return render(
        request,
        "purchase_suggestions/index.html",
        principal,
        headers={"HX-Push-Url": url(page=page if page > 1 else None)},
        title="Purchase suggestions",
        suggestions=shown,
        total=len(found),
        warehouse=warehouse,
        warehouses=codes,
        computed_at=computed_at,
        cover_days=cover,
        page=page,
        previous_url=url(page=page - 1 if page > 2 else None) if page > 1 else None,
        next_url=url(page=page + 1) if start + PAGE_SIZE < len(found) else None,
        csv_url=url(format="csv"),
    )
