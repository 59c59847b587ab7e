"""HTTP route of the demand forecast: ``GET /reports/reorder-points`` (JSON or CSV)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from storekeeper.accounts.domain import STAFF, Principal
from storekeeper.api.deps import DatabaseDep, require
from storekeeper.api.downloads import csv_response
from storekeeper.api.errors import responses
from storekeeper.inventory.schemas import WarehouseCode
from storekeeper.reporting.forecast import service
from storekeeper.reporting.forecast.schemas import ReorderPointPage, ReorderPointRead

router = APIRouter(tags=["reports"])
Staff = Annotated[Principal, Depends(require(STAFF))]

CSV_COLUMNS = list(ReorderPointRead.model_fields)
CSV_LIMIT = 100_000


@router.get(
    "/reorder-points",
    response_model=ReorderPointPage,
    responses={
        **responses(401, 403, 422),
        200: {"content": {"text/csv": {}}, "description": "JSON page, or CSV of every row"},
    },
)
def list_reorder_points(
    _: Staff,
    db: DatabaseDep,
    warehouse: Annotated[WarehouseCode | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
    format_: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> ReorderPointPage | Response:
    """Reorder points and safety stock per SKU and warehouse from the last forecast run, with
    the forecast, its backtest error and method (managers and admins).

    ``format=csv`` downloads every row of the filter (``limit`` and ``cursor`` do not apply).
    """
    warehouses = None if warehouse is None else [warehouse]
    after = service.decode_cursor(cursor) if cursor else None
    with db.reading() as session:
        if format_ == "csv":
            rows: list[service.ReorderPointView] = []
            key = after
            while len(rows) < CSV_LIMIT:
                page, key = service.list_reorder_points(
                    session, warehouses=warehouses, after=key, limit=service.MAX_PAGE
                )
                rows += page
                if key is None:
                    break
            suffix = f"-{warehouse}" if warehouse else ""
            return csv_response(
                f"reorder-points{suffix}.csv",
                CSV_COLUMNS,
                ([getattr(row, name) for name in CSV_COLUMNS] for row in rows[:CSV_LIMIT]),
            )
        items, next_key = service.list_reorder_points(
            session, warehouses=warehouses, after=after, limit=limit
        )
    return ReorderPointPage(
        items=[ReorderPointRead.model_validate(item) for item in items],
        next_cursor=service.encode_cursor(next_key) if next_key else None,
    )
