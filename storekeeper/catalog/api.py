"""HTTP routes of the catalog context."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Response, status
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

from storekeeper.accounts.domain import STAFF, Principal
from storekeeper.api.deps import DatabaseDep, SettingsDep, provided, require
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
from storekeeper.catalog.viewcache import CachedView, ProductViewCache
from storekeeper.db import Database

router = APIRouter(prefix="/products", tags=["catalog"])
Staff = Annotated[Principal, Depends(require(STAFF))]
_SKU_MAX = 64
_ETAGS_MAX = 1000
SkuPath = Annotated[str, Path(min_length=1, max_length=_SKU_MAX)]
ProductViews = Annotated[ProductViewCache, Depends(provided("product_views"))]
IfNoneMatch = Annotated[
    str | None,
    Header(
        alias="If-None-Match",
        max_length=_ETAGS_MAX,
        description='Entity tags the caller holds (`"3"`); 304 if one is the current version.',
    ),
]
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


@router.get(
    "/{sku}",
    response_model=ProductRead,
    responses={
        **responses(404, 422),
        304: {"description": "Not modified: `If-None-Match` names the current version."},
    },
)
async def get_product(
    sku: SkuPath,
    db: DatabaseDep,
    views: ProductViews,
    settings: SettingsDep,
    if_none_match: IfNoneMatch = None,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """One product, archived or not; public.

    The ``ETag`` is the product's version (``"3"``, the form ``If-Match`` takes back); with
    ``If-None-Match`` naming it the answer is 304 with no body.
    """
    # Served by ProductReadRoute (below) in the app; this route documents it, and answers
    # in an app built without it.
    view = await _view(db, views, sku)
    return _answer(view, if_none_match, authorization, settings.catalog_http_max_age_s)


async def _view(db: Database, views: ProductViewCache, sku: str) -> CachedView:
    """The view of ``sku``: from this process's cache, else one query (async with no thread
    hop on SQLite, see Database.read) whose JSON pydantic-core writes, then kept."""
    view = views.get(sku)
    if view is None:
        ticket = views.ticket()
        product = await db.read(lambda connection: service.get_view(connection, sku=sku))
        view = CachedView(product.model_dump_json().encode(), product.version)
        views.put(sku, view, ticket)
    return view


def _answer(
    view: CachedView, if_none_match: str | None, authorization: str | None, max_age_s: int
) -> Response:
    """The view, or 304 if ``If-None-Match`` names its version; cacheable by whom it may be.

    Anonymous reads may be kept by shared caches, a signed-in caller's only by its browser;
    either way revalidated (cheap: a 304) unless ``catalog_http_max_age_s`` allows staleness.
    """
    freshness = f"max-age={max_age_s}" if max_age_s else "no-cache"
    headers = {
        "ETag": view.etag,
        "Cache-Control": f"{'private' if authorization else 'public'}, {freshness}",
    }
    if if_none_match is not None and _matches(if_none_match, view.etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(view.body, media_type="application/json", headers=headers)


def _matches(if_none_match: str, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weak comparison, as RFC 9110 wants for it)."""
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


class ProductReadRoute(BaseRoute):
    """``GET {prefix}/products/{sku}``, matched before every other route: ``get_product``'s
    answer (headers, 304 and errors included) without FastAPI's routing and parameter parsing.

    The hottest read of a shop (bench W1): with the view cached, FastAPI's route scan and
    dependency solving were ~80 % of a request's CPU. A request this does not match (a SKU longer
    than 64 characters, an ``If-None-Match`` over its limit, another method) goes on to
    ``get_product``, which validates it. Installed
    by the app inside every middleware: rate limits, security headers, metrics and the access log
    apply as to any route; an unknown SKU raises ``UnknownSku``, mapped to 404 as anywhere.
    """

    def __init__(
        self, prefix: str, *, db: Database, views: ProductViewCache, max_age_s: int
    ) -> None:
        self.path_format = f"{prefix}/products/{{sku}}"
        self._start = f"{prefix}/products/"
        self._db = db
        self._views = views
        self._max_age_s = max_age_s
        self._taken: frozenset[str] = frozenset()

    def leave(self, names: Iterable[str]) -> None:
        """Match no SKU among ``names``: other routes' fixed paths (``/products/export``),
        which FastAPI's order puts before ``/products/{sku}``."""
        self._taken = frozenset(names)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """FULL for a GET of one product by a SKU of a valid length (and no other route's)."""
        if scope["type"] != "http" or scope["method"] != "GET":
            return Match.NONE, {}
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):  # mounted under a prefix (as Starlette's routes do)
            path = path[len(root) :]
        if not path.startswith(self._start):
            return Match.NONE, {}
        sku = path[len(self._start) :]
        if not 0 < len(sku) <= _SKU_MAX or "/" in sku or sku in self._taken:
            return Match.NONE, {}
        if any(
            name == b"if-none-match" and len(value) > _ETAGS_MAX for name, value in scope["headers"]
        ):
            return Match.NONE, {}  # get_product answers 422, as its declared limit says
        return Match.FULL, {"route": self, "path_params": {"sku": sku}}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the product's view (or 304)."""
        view = await _view(self._db, self._views, scope["path_params"]["sku"])
        # The two headers it needs, first of each as Headers.get gives it, in one pass: a
        # Headers object scans the list per name and raises KeyError for each one missing.
        if_none_match: bytes | None = None
        authorization: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"if-none-match" and if_none_match is None:
                if_none_match = value
            elif name == b"authorization" and authorization is None:
                authorization = value
        response = _answer(
            view,
            None if if_none_match is None else if_none_match.decode("latin-1"),
            None if authorization is None else authorization.decode("latin-1"),
            self._max_age_s,
        )
        await response(scope, receive, send)


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
