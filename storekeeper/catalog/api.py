"""HTTP routes of the catalog context."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Response, status

from storekeeper.accounts.domain import STAFF, Principal
from storekeeper.api.deps import DatabaseDep, require
from storekeeper.api.errors import responses
from storekeeper.catalog import service
from storekeeper.catalog.models import Product
from storekeeper.catalog.schemas import (
    Barcode,
    ProductCreate,
    ProductPage,
    ProductRead,
    ProductUpdate,
)

router = APIRouter(prefix="/products", tags=["catalog"])
Staff = Annotated[Principal, Depends(require(STAFF))]
SkuPath = Annotated[str, Path(min_length=1, max_length=64)]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        pattern=r'^(\*|"[0-9]{1,18}"|[0-9]{1,18})$',
        description='The version the edit is based on, as `"3"` (or `3`); `*` is any version.',
    ),
]


def _expected_version(if_match: str | None) -> int | None:
    """The version an ``If-Match`` header names (``"3"`` or ``3``); ``*`` or none: any."""
    if if_match is None or if_match == "*":
        return None
    return int(if_match.strip('"'))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProductRead,
    responses=responses(401, 403, 409, 422),
)
def create_product(body: ProductCreate, _: Staff, db: DatabaseDep) -> Product:
    """Add a product (managers and admins); a taken SKU answers 409 ``duplicate_sku``, a
    barcode another product has 409 ``duplicate_barcode``."""
    with db.transaction() as session:
        return service.create(session, data=body.model_dump())


@router.get("", response_model=ProductPage, responses=responses(422))
def list_products(
    db: DatabaseDep,
    q: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    barcode: Annotated[
        Barcode | None,
        Query(
            description="Only the product on sale with this barcode (any accepted form of it: "
            "a UPC-A also as its EAN-13 with a leading 0); an invalid code (such as a wrong "
            "check digit) is 422 with the reason."
        ),
    ] = None,
) -> ProductPage:
    """Products on sale in SKU order; public, like a shop window."""
    with db.reading() as session:
        items, next_cursor = service.list_(
            session, q=q, limit=limit, cursor=cursor, barcode=barcode
        )
        return ProductPage(
            items=[ProductRead.model_validate(p) for p in items], next_cursor=next_cursor
        )


@router.get("/{sku}", response_model=ProductRead, responses=responses(404, 422))
async def get_product(sku: SkuPath, db: DatabaseDep) -> Response:
    """One product, archived or not; public."""
    # The hottest read of a shop: async with no thread hop on SQLite (see Database.read), and
    # the JSON written by pydantic-core directly. Bench W1 measures it.
    view = await db.read(lambda connection: service.get_view(connection, sku=sku))
    return Response(view.model_dump_json(), media_type="application/json")


@router.patch("/{sku}", response_model=ProductRead, responses=responses(401, 403, 404, 409, 422))
def update_product(
    sku: SkuPath,
    body: ProductUpdate,
    _: Staff,
    db: DatabaseDep,
    if_match: IfMatch = None,
) -> Product:
    """Change name, price, currency, attributes, temperature range or barcodes.

    With ``If-Match: "<version>"`` the edit applies only to that version; if the product has
    changed since, it answers 409 ``stale_version`` and changes nothing.
    """
    with db.transaction() as session:
        return service.update(
            session,
            sku=sku,
            changes=body.model_dump(exclude_unset=True),
            expected_version=_expected_version(if_match),
        )


@router.delete("/{sku}", response_model=ProductRead, responses=responses(401, 403, 404, 422))
def archive_product(sku: SkuPath, _: Staff, db: DatabaseDep) -> Product:
    """Archive a product: no longer listed or sold, kept for history."""
    with db.transaction() as session:
        return service.archive(session, sku=sku)
