"""HTTP routes of the catalog context."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from storekeeper.accounts.domain import STAFF, Principal
from storekeeper.api.deps import DatabaseDep, require
from storekeeper.api.errors import responses
from storekeeper.catalog import service
from storekeeper.catalog.models import Product
from storekeeper.catalog.schemas import ProductCreate, ProductPage, ProductRead, ProductUpdate

router = APIRouter(prefix="/products", tags=["catalog"])
Staff = Annotated[Principal, Depends(require(STAFF))]
SkuPath = Annotated[str, Path(min_length=1, max_length=64)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProductRead,
    responses=responses(401, 403, 409, 422),
)
def create_product(body: ProductCreate, _: Staff, db: DatabaseDep) -> Product:
    """Add a product (managers and admins); a taken SKU answers 409 ``duplicate_sku``."""
    with db.transaction() as session:
        return service.create(session, data=body.model_dump())


@router.get("", response_model=ProductPage, responses=responses(422))
def list_products(
    db: DatabaseDep,
    q: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> ProductPage:
    """Products on sale in SKU order; public, like a shop window."""
    with db.reading() as session:
        items, next_cursor = service.list_(session, q=q, limit=limit, cursor=cursor)
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


@router.patch("/{sku}", response_model=ProductRead, responses=responses(401, 403, 404, 422))
def update_product(sku: SkuPath, body: ProductUpdate, _: Staff, db: DatabaseDep) -> Product:
    """Change name, price, currency, attributes or temperature range."""
    with db.transaction() as session:
        return service.update(session, sku=sku, changes=body.model_dump(exclude_unset=True))


@router.delete("/{sku}", response_model=ProductRead, responses=responses(401, 403, 404, 422))
def archive_product(sku: SkuPath, _: Staff, db: DatabaseDep) -> Product:
    """Archive a product: no longer listed or sold, kept for history."""
    with db.transaction() as session:
        return service.archive(session, sku=sku)
