"""Console pages: products: the searchable list (a scanned barcode finds its product first), a
product's page (barcodes, stock and history), and the staff's create, edit (with a version
check) and archive forms.

Every read and write goes through the catalog and inventory services, with the role rules of
the matching API routes: anyone on the console reads, managers and admins change the catalog; a
clerk sees the stock and movements of their own warehouses only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from storekeeper.accounts.domain import STAFF, STOCK_HANDLERS, Principal
from storekeeper.api.deps import DatabaseDep
from storekeeper.api.downloads import csv_stream
from storekeeper.catalog import barcodes
from storekeeper.catalog import service as catalog
from storekeeper.catalog.schemas import ProductCreate, ProductUpdate
from storekeeper.db import Database
from storekeeper.errors import Conflict, DomainError, InvalidRequest
from storekeeper.inventory import history, levels
from storekeeper.web.forms import form_data, validate
from storekeeper.web.session import allowed
from storekeeper.web.templating import render

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Principal, Depends(allowed(STOCK_HANDLERS))]
Staff = Annotated[Principal, Depends(allowed(STAFF))]
Fields = Annotated[dict[str, str], Depends(form_data)]
SkuPath = Annotated[str, Path(min_length=1, max_length=64)]
Done = Literal["created", "saved", "archived"]

PAGE = 50
"""Products per page of the list, movements per page of a product's history."""

_PRICE = re.compile(r"^(\d{1,13})(?:[.,](\d{1,2}))?$")
_FRIENDLY = {
    # Pydantic says what a pattern is; a person needs the rule in words.
    ("sku", "String should match pattern"): (
        "letters, digits, '.', '_' and '-' only, starting with a letter or digit, at most 64"
    ),
    ("currency", "String should match pattern"): "three capital letters, such as EUR",
    ("price", "Input should be less than or equal to"): "at most 10,000,000,000.00",
    ("barcodes", "List should have at most"): (
        f"at most {barcodes.MAX_PER_PRODUCT} barcodes per product"
    ),
}


# --- the list ---------------------------------------------------------------------------------


def _list_url(q: str, show: catalog.Listed, **extra: str | None) -> str:
    """The list's address for a filter (defaults left out, so the address stays short)."""
    params = {"q": q or None, "show": None if show == "active" else show, **extra}
    query = urlencode({k: v for k, v in params.items() if v})
    return "/products" + (f"?{query}" if query else "")


def _is_fragment_request(request: Request) -> bool:
    # htmx asks for the table only; its history restore (back button after a cache miss) and
    # plain browsers get the whole page.
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


@router.get("/products")
def index(
    request: Request,
    principal: Viewer,
    db: DatabaseDep,
    q: Annotated[str, Query(max_length=100)] = "",
    show: Annotated[catalog.Listed, Query()] = "active",
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    format: Annotated[Literal["html", "csv"], Query()] = "html",
) -> Response:
    """Products in SKU order, searched by SKU or name as one types, a page at a time; or, as
    CSV, every product of the filter. A search that is a product's barcode (a scan) shows that
    product first, whatever ``show`` says, then the SKU and name matches."""
    q = q.strip()
    if format == "csv":
        return csv_stream(
            "products.csv",
            (
                "sku",
                "name",
                "price_cents",
                "currency",
                "min_temp_c",
                "max_temp_c",
                "archived",
                "version",
                "updated_at",
                "barcodes",
            ),
            _every_product(db, q=q, show=show),
        )
    with db.reading() as session:
        scanned = _scanned(session, q) if cursor is None else None
        items, next_cursor = catalog.list_(
            session, q=q or None, limit=PAGE, cursor=cursor, listed=show
        )
    if scanned is not None:
        items = [scanned, *(p for p in items if p.sku != scanned.sku)]
    context: dict[str, Any] = {
        "title": "Products",
        "products": items,
        "scanned": scanned,
        "scanned_code": barcodes.normalise(q) if scanned is not None else None,
        "q": q,
        "show": show,
        "paged": cursor is not None,
        "first_url": _list_url(q, show),
        "next_url": _list_url(q, show, cursor=next_cursor) if next_cursor else None,
        "csv_url": _list_url(q, show, format="csv"),
    }
    headers = {"Vary": "HX-Request"}
    if not _is_fragment_request(request):
        return render(request, "products/index.html", principal, headers=headers, **context)
    # The address bar shows the filter's own address (defaults left out), not htmx's.
    headers["HX-Push-Url"] = _list_url(q, show, cursor=cursor)
    return render(request, "products/_results.html", principal, headers=headers, **context)


def _scanned(session: Session, q: str) -> Any:
    """The product (a catalog ``Product``) whose barcode the search is, as a scanner typed
    it; or None."""
    return catalog.by_barcode(session, code=q) if q else None


def _every_product(db: Database, *, q: str, show: catalog.Listed) -> Iterator[list[Any]]:
    """Every product of a filter for the export, read a page (one short read) at a time; a
    scanned barcode's product first, as on the page."""
    with db.reading() as session:
        scanned = _scanned(session, q)
    if scanned is not None:
        yield _csv_row(scanned)
    cursor: str | None = None
    while True:
        with db.reading() as session:
            items, cursor = catalog.list_(
                session, q=q or None, limit=catalog.MAX_PAGE, cursor=cursor, listed=show
            )
        yield from (_csv_row(p) for p in items if scanned is None or p.sku != scanned.sku)
        if cursor is None:
            return


def _csv_row(p: Any) -> list[Any]:
    return [
        p.sku,
        p.name,
        p.price_cents,
        p.currency,
        p.min_temp_c,
        p.max_temp_c,
        "yes" if p.archived else "no",
        p.version,
        p.updated_at.isoformat(),
        "\n".join(p.barcodes),  # one per line, as in the form: a code may hold any sign
    ]


# --- creating ---------------------------------------------------------------------------------


@router.get("/products/new")
def new_form(request: Request, principal: Staff) -> Response:
    """The form for a new product."""
    return render(
        request,
        "products/form.html",
        principal,
        title="New product",
        creating=True,
        values={"currency": "EUR"},
        errors={},
    )


@router.post("/products/new")
def create(request: Request, principal: Staff, fields: Fields, db: DatabaseDep) -> Response:
    """Add the product (managers and admins), as ``POST /api/v1/products``."""
    data, errors = _parsed(fields, creating=True)
    model, invalid = validate(ProductCreate, data)
    errors = {**_friendly(invalid), **errors}
    if model is not None and not errors:
        try:
            with db.transaction() as session:
                catalog.create(session, data=model.model_dump())
        except DomainError as exc:
            field = _FIELD_OF_CODE.get(exc.code, "form")
            errors[field] = exc.detail
            status = 409
        else:
            return _see(f"/products/{quote(model.sku)}?done=created")
    else:
        status = 422
    return render(
        request,
        "products/form.html",
        principal,
        status_code=status,
        title="New product",
        creating=True,
        values=fields,
        errors=errors,
    )


# --- one product ------------------------------------------------------------------------------


@router.get("/products/{sku}")
def detail(
    request: Request,
    sku: SkuPath,
    principal: Viewer,
    db: DatabaseDep,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    done: Annotated[Done | None, Query()] = None,
) -> Response:
    """A product: its fields, its stock per warehouse and its movements, newest first (a
    clerk sees their own warehouses' only)."""
    scope = _scope(principal)
    with db.reading() as session:
        product = catalog.get_or_raise(session, sku=sku)
        stock = levels.stock_of(session, sku=sku)
        movements, older = history.list_movements(
            session, sku=sku, warehouses=scope, before_id=before, limit=PAGE
        )
    if scope is not None:
        stock = [level for level in stock if level.warehouse in scope]
    base = f"/products/{quote(sku)}"
    return render(
        request,
        "products/detail.html",
        principal,
        title=f"{product.sku} · {product.name}",
        product=product,
        attributes=_attributes_text(product.attributes),
        barcodes=[(code, barcodes.label_of(code)) for code in product.barcodes],
        stock=levels.StockTotals(sku, tuple(stock)),
        movements=movements,
        paged=before is not None,
        newest_url=base,
        older_url=f"{base}?before={older}" if older is not None else None,
        csv_url=f"{base}/movements.csv",
        done=done,
    )


@router.get("/products/{sku}/movements.csv")
def movements_csv(sku: SkuPath, principal: Viewer, db: DatabaseDep) -> Response:
    """The product's whole movement history as CSV (a clerk's: their warehouses only)."""
    with db.reading() as session:
        catalog.get_or_raise(session, sku=sku)
    return csv_stream(
        f"movements-{sku}.csv",
        ("id", "created_at", "sku", "warehouse", "delta", "reason", "ref", "actor_id", "replica"),
        _every_movement(db, sku=sku, scope=_scope(principal)),
    )


def _scope(principal: Principal) -> frozenset[str] | None:
    """The warehouses whose stock a caller sees: all (``None``) for staff, a clerk's own."""
    return None if principal.has_role(STAFF) else principal.warehouses


def _every_movement(db: Database, *, sku: str, scope: frozenset[str] | None) -> Iterator[list[Any]]:
    before: int | None = None
    while True:
        with db.reading() as session:
            page, before = history.list_movements(
                session, sku=sku, warehouses=scope, before_id=before, limit=history.MAX_PAGE
            )
        for m in page:
            yield [
                m.id,
                m.created_at.isoformat(),
                m.sku,
                m.warehouse,
                m.delta,
                m.reason,
                m.ref,
                m.actor_id,
                m.replica_id,
            ]
        if before is None:
            return


# --- editing ----------------------------------------------------------------------------------


@router.get("/products/{sku}/edit")
def edit_form(request: Request, sku: SkuPath, principal: Staff, db: DatabaseDep) -> Response:
    """The edit form, filled with the product's values and carrying its version."""
    with db.reading() as session:
        product = catalog.get_or_raise(session, sku=sku)
    return render(
        request,
        "products/form.html",
        principal,
        title=f"Edit {product.sku}",
        product=product,
        values=_form_values(product),
        originals=_form_values(product),
        version=product.version,
        errors={},
    )


@router.post("/products/{sku}/edit")
def edit(
    request: Request, sku: SkuPath, principal: Staff, fields: Fields, db: DatabaseDep
) -> Response:
    """Save the edit, as ``PATCH /api/v1/products/{sku}`` with ``If-Match`` of the form's
    version: if someone changed the product since the form was opened, nothing is saved and
    the form comes back with the current values beside the entries (409)."""
    data, errors = _parsed(fields, creating=False)
    version = fields.get("version", "")
    if not version.isdigit() or len(version) > 18:
        errors["form"] = "this form lacks the product's version: reload the page and edit again"
    model, invalid = validate(ProductUpdate, data)
    errors = {**_friendly(invalid), **errors}
    status, stale = 422, False
    if model is not None and not errors:
        try:
            with db.transaction() as session:
                catalog.update(
                    session,
                    sku=sku,
                    changes=model.model_dump(exclude_unset=True),
                    expected_version=int(version),
                )
        except catalog.StaleVersion:
            status, stale = 409, True
        except (Conflict, InvalidRequest) as exc:
            status = 409 if isinstance(exc, Conflict) else 422
            errors.update(_friendly({_FIELD_OF_CODE.get(exc.code, "form"): exc.detail}))
        else:
            return _see(f"/products/{quote(sku)}?done=saved")
    with db.reading() as session:
        product = catalog.get_or_raise(session, sku=sku)
    current = _form_values(product)
    originals = {name: fields.get(f"was_{name}", "") for name in _LABELS}
    return render(
        request,
        "products/form.html",
        principal,
        status_code=status,
        title=f"Edit {product.sku}",
        product=product,
        values=fields,
        # After a stale edit the form carries the version and values just shown, so saving
        # again is a deliberate choice made with the current values in view.
        originals=current if stale else originals,
        version=product.version if stale else version,
        sent_version=version,
        stale=_differences(originals, current, fields) if stale else None,
        errors=errors,
    )


# --- archiving --------------------------------------------------------------------------------


@router.get("/products/{sku}/archive")
def archive_form(request: Request, sku: SkuPath, principal: Staff, db: DatabaseDep) -> Response:
    """Asks whether to archive (where the page's button works without JavaScript)."""
    with db.reading() as session:
        product = catalog.get_or_raise(session, sku=sku)
    return render(
        request,
        "products/archive.html",
        principal,
        title=f"Archive {product.sku}",
        product=product,
    )


@router.post("/products/{sku}/archive")
def archive(
    request: Request, sku: SkuPath, principal: Staff, fields: Fields, db: DatabaseDep
) -> Response:
    """Archive the product once confirmed, as ``DELETE /api/v1/products/{sku}``."""
    if fields.get("confirmed") != "yes":
        return _see(f"/products/{quote(sku)}/archive", request)
    with db.transaction() as session:
        catalog.archive(session, sku=sku)
    return _see(f"/products/{quote(sku)}?done=archived", request)


# --- helpers ----------------------------------------------------------------------------------


def _see(target: str, request: Request | None = None) -> Response:
    """Go to ``target`` after a POST (htmx: the whole page moves, not a fragment)."""
    if request is not None and request.headers.get("HX-Request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def _parsed(fields: Mapping[str, str], *, creating: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """The form's text as the API schema's types, and the errors of what cannot be read."""
    data: dict[str, Any] = {"name": fields.get("name", "")}
    errors: dict[str, str] = {}
    if creating:
        data["sku"] = fields.get("sku", "")
    currency = fields.get("currency", "")
    if currency or not creating:
        data["currency"] = currency.upper()
    price = _PRICE.match(fields.get("price", ""))
    if price is None:
        errors["price"] = "enter a price such as 12.99 (a dot or comma before the cents)"
    else:
        data["price_cents"] = int(Decimal(f"{price[1]}.{price[2] or '0'}") * 100)
    for name in ("min_temp_c", "max_temp_c"):
        text = fields.get(name, "").replace(",", ".")
        if not text:
            if not creating:
                data[name] = None  # blank clears the limit
            continue
        try:
            data[name] = float(text)
        except ValueError:
            errors[name] = "enter degrees Celsius as a number, such as 4 or -18.5"
    attributes = fields.get("attributes", "")
    if attributes:
        try:
            parsed = json.loads(attributes)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, dict):
            data["attributes"] = parsed
        else:
            errors["attributes"] = 'enter a JSON object, such as {"category": "chilled"}'
    elif not creating:
        data["attributes"] = {}
    codes, problems = _barcode_lines(fields.get("barcodes", ""))
    if problems:
        errors["barcodes"] = "\n".join(problems)
    elif codes or not creating:
        data["barcodes"] = codes  # blank on an edit removes them all
    return data, errors


def _barcode_lines(text: str) -> tuple[list[str], list[str]]:
    """The barcodes of the form's text, one a line (a scanner's Enter ends each), and what is
    wrong with each line, in words (the API's rules: storekeeper.catalog.barcodes)."""
    codes: list[str] = []
    problems: list[str] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        if not line.strip(barcodes.WHITESPACE):
            continue
        try:
            code = barcodes.normalise(line)
        except barcodes.InvalidBarcode as exc:
            problems.append(f"Line {number}, {barcodes.describe(line, exc)}")
            continue
        if code in first_line:
            problems.append(
                f"Line {number}, {code}: the same code as line {first_line[code]} (a UPC-A "
                "and its EAN-13 with a leading 0 are one code); remove one"
            )
            continue
        first_line[code] = number
        codes.append(code)
    return codes, problems


def _friendly(errors: Mapping[str, str]) -> dict[str, str]:
    """The schema's errors keyed by the form's field names, in words a person can act on."""
    friendly: dict[str, str] = {}
    for field, message in errors.items():
        name = {"price_cents": "price", "form": "form"}.get(field, field.split(".")[0])
        if "min_temp_c must not exceed max_temp_c" in message:
            name, message = "max_temp_c", "must not be below the lowest temperature"
        for (where, start), words in _FRIENDLY.items():
            if name == where and message.startswith(start):
                message = words
        friendly.setdefault(name, message)
    return friendly


def _attributes_text(attributes: Mapping[str, Any]) -> str:
    return json.dumps(attributes, ensure_ascii=False, indent=2) if attributes else ""


def _form_values(product: Any) -> dict[str, str]:
    """A product's values as the form's text fields."""

    def degrees(value: float | None) -> str:
        return "" if value is None else repr(value)  # shortest text that reads back the same

    whole, cents = divmod(product.price_cents, 100)
    return {
        "name": product.name,
        "price": f"{whole}.{cents:02d}",
        "currency": product.currency,
        "min_temp_c": degrees(product.min_temp_c),
        "max_temp_c": degrees(product.max_temp_c),
        "attributes": _attributes_text(product.attributes),
        "barcodes": "\n".join(product.barcodes),
    }


_FIELD_OF_CODE = {"duplicate_sku": "sku", "duplicate_barcode": "barcodes"}
"""The form field a service's refusal is about (else it is said above the form)."""

_LABELS = {
    "name": "Name",
    "price": "Price",
    "currency": "Currency",
    "min_temp_c": "Lowest temperature (°C)",
    "max_temp_c": "Highest temperature (°C)",
    "attributes": "Attributes",
    "barcodes": "Barcodes",
}


def _differences(
    opened: Mapping[str, str], current: Mapping[str, str], entered: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Each field as the form showed it when opened, as it is now, and as entered; marking
    those someone else changed meanwhile."""
    rows = []
    for field, label in _LABELS.items():
        was, now, yours = opened.get(field, ""), current.get(field, ""), entered.get(field, "")
        rows.append(
            {
                "label": label,
                "was": was,
                "current": now,
                "yours": yours,
                "changed": not _same(field, was, now),
            }
        )
    return rows


def _same(field: str, a: str, b: str) -> bool:
    if field == "barcodes":  # a set: the order of the lines does not matter
        return sorted(_barcode_lines(a)[0]) == sorted(_barcode_lines(b)[0])
    return a == b or (field == "attributes" and _same_json(a, b))


def _same_json(a: str, b: str) -> bool:
    try:
        return bool(json.loads(a or "{}") == json.loads(b or "{}"))
    except (ValueError, RecursionError):
        return False
