"""Console pages: sync exceptions — offline sales (and decreases) that found too little stock,
what the replica saw, and resolving them.

The rules of ``storekeeper/sync/api.py``: staff and clerks list them (clerks only their
warehouses'), managers and admins resolve them; resolving calls ``sync.exceptions.resolve``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from storekeeper.accounts import users
from storekeeper.accounts.domain import STAFF, STOCK_HANDLERS, Principal
from storekeeper.api.deps import DatabaseDep
from storekeeper.api.downloads import csv_response
from storekeeper.api.errors import status_for
from storekeeper.errors import DomainError, NotFound
from storekeeper.inventory import warehouses as inventory_warehouses
from storekeeper.inventory.schemas import WarehouseCode
from storekeeper.sync import exceptions
from storekeeper.sync.schemas import ExceptionRead, ResolveRequest
from storekeeper.web.forms import Blank, Cursor, field_errors, form_data
from storekeeper.web.session import allowed
from storekeeper.web.templating import render

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Principal, Depends(allowed(STOCK_HANDLERS))]  # as GET /sync/exceptions
Resolver = Annotated[Principal, Depends(allowed(STAFF))]  # as POST /sync/exceptions/{id}/resolve

PAGE_SIZE = 25
CSV_LIMIT = 10_000

KINDS = {
    "stock.sell": "Offline sale",
    "stock.adjust": "Write-off or correction",
    "stock.count": "Count",
}
RESOLUTIONS = {
    "accept_loss": "Accept the loss",
    "correct_count": "Correct the count",
    "attach_receipt": "Attach to a receipt",
}
RESOLUTION_HELP = {
    "accept_loss": "Stock stays as it is; the shortfall is written off as unexplained.",
    "correct_count": "On-hand becomes the number you counted on the shelf (a count movement).",
    "attach_receipt": "The units came from a delivery booked later: the shortfall is taken "
    "off that stock now as a sale.",
}
STATUSES = {"open": "Open", "resolved": "Resolved", "all": "Open and resolved"}


StatusQuery = Annotated[Literal["open", "resolved", "all"], Query()]
WarehouseQuery = Annotated[WarehouseCode | None, Blank, Query()]
CursorQuery = Annotated[Cursor, Blank, Query()]
FormatQuery = Annotated[Literal["html", "csv"], Query(alias="format")]
ExceptionId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _query(status: str, warehouse: str | None, **extra: str) -> str:
    pairs = {"status": status, "warehouse": warehouse or "", **extra}
    return urlencode({k: v for k, v in pairs.items() if v})


def _warehouse_choices(session: Session, principal: Principal) -> list[str]:
    """The warehouses the filter offers: a clerk's own, or all for staff."""
    if principal.has_role(STAFF):
        return [w.code for w in inventory_warehouses.list_warehouses(session)]
    return sorted(principal.warehouses)


def _people(session: Session, items: Sequence[ExceptionRead]) -> dict[uuid.UUID, str]:
    ids = {i.actor_id for i in items if i.actor_id} | {
        i.resolved_by for i in items if i.resolved_by
    }
    return users.emails_by_id(session, user_ids=ids)


@router.get("/sync-exceptions")
def index(
    request: Request,
    principal: Viewer,
    db: DatabaseDep,
    status: StatusQuery = "open",
    warehouse: WarehouseQuery = None,
    cursor: CursorQuery = None,
    format_: FormatQuery = "html",
) -> Response:
    """Exceptions oldest first, open or resolved, of one warehouse or all the viewer may see."""
    wanted = None if status == "all" else status
    with db.reading() as session:
        if format_ == "csv":
            rows: list[ExceptionRead] = []
            while True:
                items, cursor = exceptions.list_(
                    session,
                    principal=principal,
                    status=wanted,
                    warehouse=warehouse,
                    limit=exceptions.MAX_PAGE,
                    cursor=cursor,
                )
                rows.extend(exceptions.views(session, items))
                if cursor is None or len(rows) >= CSV_LIMIT:
                    break
            return _csv(rows[:CSV_LIMIT], _people(session, rows))
        items, next_cursor = exceptions.list_(
            session,
            principal=principal,
            status=wanted,
            warehouse=warehouse,
            limit=PAGE_SIZE,
            cursor=cursor,
        )
        views = exceptions.views(session, items)
        choices = _warehouse_choices(session, principal)
    here = _query(status, warehouse, **({"cursor": cursor} if cursor else {}))
    return render(
        request,
        "sync_exceptions/index.html",
        principal,
        # htmx pushes this address, not the form's with its blank fields.
        headers={"HX-Push-Url": f"/sync-exceptions?{here}"},
        title="Sync exceptions",
        items=views,
        status=status,
        warehouse=warehouse,
        warehouses=choices,
        statuses=STATUSES,
        kinds=KINDS,
        resolutions=RESOLUTIONS,
        paged=cursor is not None,
        first_url=f"/sync-exceptions?{_query(status, warehouse)}",
        next_url=f"/sync-exceptions?{_query(status, warehouse, cursor=next_cursor)}"
        if next_cursor
        else None,
        csv_url=f"/sync-exceptions?{_query(status, warehouse, format='csv')}",
    )


def _csv(rows: Sequence[ExceptionRead], people: dict[uuid.UUID, str]) -> Response:
    return csv_response(
        "sync-exceptions.csv",
        [
            "id",
            "raised_at",
            "kind",
            "sku",
            "warehouse",
            "replica_id",
            "mutation_id",
            "pushed_by",
            "replica_on_hand",
            "requested",
            "applied",
            "shortfall",
            "server_on_hand",
            "status",
            "resolution",
            "counted",
            "receipt_id",
            "resolved_at",
            "resolved_by",
            "note",
        ],
        (
            [
                e.id,
                e.created_at.isoformat(),
                e.kind,
                e.sku,
                e.warehouse,
                e.replica_id,
                str(e.mutation_id),
                people.get(e.actor_id, "") if e.actor_id else "",
                "" if e.seen_on_hand is None else e.seen_on_hand,
                e.requested,
                e.applied,
                e.shortfall,
                "" if e.server_on_hand is None else e.server_on_hand,
                e.status,
                e.resolution or "",
                "" if e.counted is None else e.counted,
                "" if e.receipt_id is None else e.receipt_id,
                e.resolved_at.isoformat() if e.resolved_at else "",
                people.get(e.resolved_by, "") if e.resolved_by else "",
                e.note or "",
            ]
            for e in rows
        ),
    )


def _detail(
    request: Request,
    session: Session,
    principal: Principal,
    exception_id: int,
    *,
    status_code: int = 200,
    done: bool = False,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    item = exceptions.views(
        session, [exceptions.get(session, principal=principal, exception_id=exception_id)]
    )[0]
    receipts = exceptions.receipts_for(session, exception=item) if item.status == "open" else []
    return render(
        request,
        "sync_exceptions/detail.html",
        principal,
        status_code=status_code,
        title=f"Sync exception {item.id}",
        item=item,
        people=_people(session, [item]),
        kinds=KINDS,
        resolutions=RESOLUTIONS,
        resolution_help=RESOLUTION_HELP,
        receipts=receipts,
        may_resolve=principal.has_role(STAFF),
        done=done and item.status == "resolved",
        form=form or {"resolution": "accept_loss"},
        errors=errors or {},
    )


@router.get("/sync-exceptions/{exception_id}")
def detail(
    request: Request,
    exception_id: ExceptionId,
    principal: Viewer,
    db: DatabaseDep,
    done: Annotated[bool, Query()] = False,
) -> Response:
    """One exception: what the replica did and saw, and how it was (or may be) resolved."""
    with db.reading() as session:
        return _detail(request, session, principal, exception_id, done=done)


def _resolve_request(fields: dict[str, str]) -> tuple[ResolveRequest | None, dict[str, str]]:
    """The API's body from the form: only the field the chosen resolution needs is sent."""
    resolution = fields.get("resolution", "")
    data: dict[str, Any] = {"note": fields.get("note", ""), "resolution": resolution}
    needs = {"correct_count": "counted", "attach_receipt": "receipt_id"}.get(resolution)
    if needs and needs in fields:
        data[needs] = fields[needs]
    try:
        return ResolveRequest.model_validate(data, strict=False), {}
    except ValidationError as exc:
        errors = field_errors(exc)
        if "form" in errors and needs:  # the resolution's own field is missing
            errors.pop("form")
            errors[needs] = (
                "enter the number of units counted"
                if needs == "counted"
                else "choose the receipt the units came from"
            )
        return None, errors


@router.post("/sync-exceptions/{exception_id}/resolve")
async def resolve(
    request: Request, exception_id: ExceptionId, principal: Resolver, db: DatabaseDep
) -> Response:
    """Resolve an exception as ``POST /api/v1/sync/exceptions/{id}/resolve`` does."""
    fields = await form_data(request)
    body, errors = _resolve_request(fields)
    status_code = 422
    if body is not None:
        try:
            with db.transaction() as session:
                exceptions.resolve(
                    session,
                    exception_id=exception_id,
                    note=body.note,
                    actor_id=principal.user_id,
                    resolution=exceptions.Resolution(body.resolution),
                    counted=body.counted,
                    receipt_id=body.receipt_id,
                )
        except NotFound:
            raise
        except DomainError as exc:
            status_code = status_for(exc)
            field = {"correct_count": "counted", "attach_receipt": "receipt_id"}.get(
                body.resolution, "form"
            )
            errors = {"form" if exc.code == "already_resolved" else field: exc.detail}
        else:
            return RedirectResponse(f"/sync-exceptions/{exception_id}?done=true", status_code=303)
    with db.reading() as session:
        return _detail(
            request,
            session,
            principal,
            exception_id,
            status_code=status_code,
            form=fields,
            errors=errors,
        )
