"""HTTP routes of imports and exports: upload a file (a job with progress), follow it, confirm a
dry run; products and a warehouse's stock as CSV files that import back as they were."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Path, Query, Response, UploadFile, status
from pydantic import BaseModel

from storekeeper.accounts.domain import STAFF, Principal
from storekeeper.api.deps import DatabaseDep, require
from storekeeper.api.downloads import csv_stream
from storekeeper.api.errors import responses
from storekeeper.catalog import service as catalog
from storekeeper.db import Database
from storekeeper.imports import parsing, service
from storekeeper.inventory import levels, warehouses

router = APIRouter(tags=["import"])
Staff = Annotated[Principal, Depends(require(STAFF))]
RunId = Annotated[int, Path(ge=1, le=2**53)]


class ImportRead(BaseModel):
    """An import run: its state, progress (``processed`` of ``total`` rows) and result."""

    id: int
    filename: str
    status: Literal["queued", "checking", "importing", "done", "invalid", "failed"]
    dry_run: bool
    stock_mode: str | None
    warehouse: str | None
    total: int
    processed: int
    result: dict[str, Any]
    error: str | None
    created_at: datetime
    finished_at: datetime | None


@router.post(
    "/products/import",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ImportRead,
    responses=responses(401, 403, 404, 422),
)
async def upload(
    principal: Staff,
    db: DatabaseDep,
    file: Annotated[UploadFile, File(description="A CSV (UTF-8) or XLSX file")],
    dry_run: Annotated[bool, Form()] = False,
    stock: Annotated[Literal["set", "add"] | None, Form()] = None,
    warehouse: Annotated[str | None, Form(max_length=32)] = None,
) -> ImportRead:
    """Import products (and stock) from a file, as a background job: 202 with the run, whose
    ``GET`` shows its progress and result. The header and options are checked at once (unknown
    columns, a quantity column without ``stock``: 422); rows when the job runs. See
    docs/import.md."""
    content = await file.read()
    return await _start(
        db,
        lambda session: service.submit(
            session,
            content=content,
            filename=file.filename or "upload",
            stock_mode=stock,
            warehouse=warehouse or None,
            dry_run=dry_run,
            actor_id=str(principal.user_id),
            as_job=True,
        ),
    )


@router.post(
    "/products/import/{run_id}/confirm",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ImportRead,
    responses=responses(401, 403, 404, 422),
)
async def confirm(run_id: RunId, principal: Staff, db: DatabaseDep) -> ImportRead:
    """Import the file of a dry run, with its options: a new run (202)."""
    return await _start(
        db,
        lambda session: service.confirm(session, run_id=run_id, actor_id=str(principal.user_id)),
    )


async def _start(db: Database, submit: Any) -> ImportRead:
    from starlette.concurrency import run_in_threadpool

    def work() -> ImportRead:
        with db.transaction() as session:
            view = service.get(session, run_id=submit(session))
        return ImportRead.model_validate(view, from_attributes=True)

    return await run_in_threadpool(work)


@router.get(
    "/products/import/{run_id}", response_model=ImportRead, responses=responses(401, 403, 404, 422)
)
def get_import(run_id: RunId, _: Staff, db: DatabaseDep) -> ImportRead:
    """An import run: status, progress and (when finished) result with every invalid row."""
    with db.reading() as session:
        return ImportRead.model_validate(service.get(session, run_id=run_id), from_attributes=True)


@router.get(
    "/products/export",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **responses(401, 403)},
)
def export_products(_: Staff, db: DatabaseDep) -> Response:
    """Every product on sale as CSV, in the import's columns: it imports back as it is."""
    return csv_stream("products.csv", parsing.PRODUCT_COLUMNS, _products(db))


def _products(db: Database) -> Iterator[list[Any]]:
    cursor: str | None = None
    while True:
        with db.reading() as session:
            items, cursor = catalog.list_(session, q=None, limit=catalog.MAX_PAGE, cursor=cursor)
        for p in items:
            yield [
                p.sku,
                p.name,
                p.price_cents,
                p.currency,
                json.dumps(p.attributes, ensure_ascii=False, separators=(",", ":"))
                if p.attributes
                else "",
                p.min_temp_c,
                p.max_temp_c,
                parsing.BARCODE_SEPARATOR.join(p.barcodes),
            ]
        if cursor is None:
            return


@router.get(
    "/stock/export",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **responses(401, 403, 404, 422)},
)
def export_stock(
    _: Staff, db: DatabaseDep, warehouse: Annotated[str, Query(min_length=1, max_length=32)]
) -> Response:
    """On-hand of every SKU stocked in ``warehouse`` as CSV (sku, quantity): it imports back
    with ``stock=set`` into that warehouse."""
    with db.reading() as session:
        warehouses.require_warehouse(session, code=warehouse)
    return csv_stream(f"stock-{warehouse}.csv", ("sku", "quantity"), _stock(db, warehouse))


def _stock(db: Database, warehouse: str) -> Iterator[list[Any]]:
    after: str | None = None
    while True:
        with db.reading() as session:
            rows, after = levels.list_levels(
                session, warehouse=warehouse, after_sku=after, limit=levels.MAX_LEVELS_PAGE
            )
        yield from ([row.sku, row.on_hand] for row in rows)
        if after is None:
            return
