"""HTTP routes of the sync context: pull, push, and the exceptions offline work raised.

The protocol is docs/design.md section 7; docs/sync.md documents every field.
"""

from __future__ import annotations

import gzip
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Response

from storekeeper.accounts.domain import DEVICES, STAFF, STOCK_HANDLERS, Principal
from storekeeper.accounts.schemas import Scope
from storekeeper.api.deps import DatabaseDep, provided, require
from storekeeper.api.errors import responses
from storekeeper.inventory.schemas import WarehouseCode
from storekeeper.sync import exceptions, feed, service, snapshot
from storekeeper.sync.schemas import (
    ExceptionPage,
    ExceptionRead,
    PullPage,
    PushRequest,
    PushResult,
    ResolveRequest,
)

router = APIRouter(prefix="/sync", tags=["sync"])
# Replicas run on staff's and clerks' devices and on device tokens; customers do not sync.
Syncer = Annotated[Principal, Depends(require(STOCK_HANDLERS | DEVICES))]
StockHandler = Annotated[Principal, Depends(require(STOCK_HANDLERS))]
Staff = Annotated[Principal, Depends(require(STAFF))]
Snapshots = Annotated[snapshot.SnapshotCache, Depends(provided("sync_snapshots"))]


@router.get("/pull", response_model=PullPage, responses=responses(401, 403, 404, 409, 422))
def pull(
    who: Syncer,
    db: DatabaseDep,
    scope: Annotated[Scope, Query(description="warehouse:CODE")],
    since: Annotated[
        str | None,
        Query(max_length=8192, description="The cursor of the previous page; none to start over."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=feed.MAX_LIMIT)] = feed.DEFAULT_LIMIT,
) -> Response:
    """Changes of the catalog and of the scope's stock, in server commit order.

    Without ``since``: a snapshot of everything, page by page, then the changes since it.
    403 for a scope the caller may not sync, 422 ``invalid_cursor``, 409 ``resync_required``.
    """
    body = feed.pull(db, principal=who, scope=scope, since=since, limit=limit)
    # Written straight from plain rows (orjson): the initial pull of a big catalog is all this.
    return Response(body, media_type="application/json")


@router.get(
    "/snapshot",
    response_class=Response,
    responses={
        **responses(401, 403, 404, 422),
        200: {
            "content": {snapshot.MEDIA_TYPE: {}},
            "description": "The scope's copy, one value per line; the cursor on the first.",
        },
    },
)
def get_snapshot(
    who: Syncer,
    db: DatabaseDep,
    cache: Snapshots,
    scope: Annotated[Scope, Query(description="warehouse:CODE")],
    accept_encoding: Annotated[str, Header()] = "",
) -> Response:
    """Everything a fresh replica of ``scope`` needs, as one file, and the cursor to pull from.

    Products on sale, the scope's stock rows and the barcodes, as of one moment; the first line
    (JSON) holds the ``cursor`` of that moment: store the rows and the cursor in one local
    transaction, then pull with ``since=cursor``. Built once and served from a cache while
    current or young (docs/sync.md). gzip'd when the client accepts it. 403 for a scope the
    caller may not sync, 404 ``unknown_warehouse``.
    """
    built = snapshot.get(db, cache, principal=who, scope=scope)
    headers = {"Cache-Control": "private, no-store", "Vary": "Accept-Encoding"}
    if "gzip" in accept_encoding.lower():
        headers["Content-Encoding"] = "gzip"
        return Response(built.body, media_type=snapshot.MEDIA_TYPE, headers=headers)
    return Response(gzip.decompress(built.body), media_type=snapshot.MEDIA_TYPE, headers=headers)


@router.post("/push", response_model=PushResult, responses=responses(401, 403, 422))
def push(body: PushRequest, who: Syncer, db: DatabaseDep) -> PushResult:
    """Apply a replica's queued mutations, each on its own; one result per mutation.

    Refusals (a scope the caller may not act on, bad data) are per mutation (``rejected``),
    not an error of the whole request; a replayed mutation id answers ``duplicate``.
    """
    results = service.push(db, principal=who, replica_id=body.replica_id, mutations=body.mutations)
    return PushResult.model_validate({"results": results})


@router.get("/exceptions", response_model=ExceptionPage, responses=responses(401, 403, 422))
def list_exceptions(
    who: StockHandler,
    db: DatabaseDep,
    status: Literal["open", "resolved"] | None = None,
    warehouse: Annotated[WarehouseCode | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=exceptions.MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
) -> ExceptionPage:
    """Offline work that could not be applied in full; clerks see their warehouses' only."""
    with db.reading() as session:
        items, next_cursor = exceptions.list_(
            session,
            principal=who,
            status=status,
            warehouse=warehouse,
            limit=limit,
            cursor=cursor,
        )
        return ExceptionPage(items=exceptions.views(session, items), next_cursor=next_cursor)


@router.post(
    "/exceptions/{exception_id}/resolve",
    response_model=ExceptionRead,
    responses=responses(401, 403, 404, 409, 422),
)
def resolve_exception(
    exception_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    body: ResolveRequest,
    who: Staff,
    db: DatabaseDep,
) -> ExceptionRead:
    """Resolve an exception (managers and admins): accept the loss, correct the count, or
    attach it to a receipt; 409 ``already_resolved``, ``insufficient_stock``,
    ``below_reserved``, ``receipt_used_up``; 422 ``not_a_receipt``."""
    with db.transaction() as session:
        exception = exceptions.resolve(
            session,
            exception_id=exception_id,
            note=body.note,
            actor_id=who.user_id,
            resolution=exceptions.Resolution(body.resolution),
            counted=body.counted,
            receipt_id=body.receipt_id,
        )
        return exceptions.views(session, [exception])[0]
