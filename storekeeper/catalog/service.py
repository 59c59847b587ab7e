"""Use cases of the catalog context."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import Table, bindparam, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storekeeper.catalog import barcodes, viewcache
from storekeeper.catalog.events import ProductChanged
from storekeeper.catalog.models import Product, ProductBarcode
from storekeeper.catalog.schemas import ProductRead
from storekeeper.db import unicode_lower, utcnow
from storekeeper.errors import Conflict, InvalidRequest, NotFound
from storekeeper.events import outbox
from storekeeper.sync import hlc

MAX_PAGE = 200
_product = cast(Table, Product.__table__)
_barcode = cast(Table, ProductBarcode.__table__)
# One round trip for a product and its barcodes: a row per barcode (one row with NULL if none).
_BY_SKU = (
    select(_product, _barcode.c.code.label("barcode_code"))
    .outerjoin(_barcode, _barcode.c.sku == _product.c.sku)
    .where(_product.c.sku == bindparam("sku"))
)
_PRICES = select(_product.c.sku, _product.c.price_cents, _product.c.currency).where(
    _product.c.sku.in_(bindparam("skus", expanding=True)), _product.c.archived_at.is_(None)
)
_CURSOR_SKU = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,63}")

LWW_FIELDS = ("name", "price_cents", "currency", "attributes", "min_temp_c", "max_temp_c")
"""Fields whose edits are last-writer-wins by hybrid logical clock (offline replicas edit them)."""

# What a sync replica holds of a product; Core rows, as the initial pull reads every product.
_SYNC_COLUMNS = (
    _product.c.sku,
    _product.c.name,
    _product.c.price_cents,
    _product.c.currency,
    _product.c.attributes,
    _product.c.min_temp_c,
    _product.c.max_temp_c,
    _product.c.version,
    _product.c.hlc,
    _product.c.archived_at,
)
_SYNC_PAGE = (
    select(*_SYNC_COLUMNS)
    .where(_product.c.sku > bindparam("after"))
    .order_by(_product.c.sku)
    .limit(bindparam("limit"))
)
_SYNC_BY_SKU = select(*_SYNC_COLUMNS).where(_product.c.sku.in_(bindparam("skus", expanding=True)))
_SYNC_BARCODES_IN_RANGE = select(_barcode.c.sku, _barcode.c.code).where(
    _barcode.c.sku > bindparam("after"), _barcode.c.sku <= bindparam("last")
)
_SYNC_BARCODES_OF = select(_barcode.c.sku, _barcode.c.code).where(
    _barcode.c.sku.in_(bindparam("skus", expanding=True))
)


@dataclass(frozen=True, slots=True)
class SyncProduct:
    """What a sync replica holds of a product (archived ones too: the feed deletes them)."""

    sku: str
    name: str
    price_cents: int
    currency: str
    attributes: dict[str, Any]
    min_temp_c: float | None
    max_temp_c: float | None
    version: int
    hlc: str | None
    archived_at: datetime | None
    barcodes: list[str]


class DuplicateSku(Conflict):
    """A product with that SKU exists already."""

    code = "duplicate_sku"


class StaleVersion(Conflict):
    """The product changed since the version the caller last read (an edit would lose it)."""

    code = "stale_version"

    def __init__(self, detail: str, *, current: int) -> None:
        super().__init__(detail)
        self.current = current


class UnknownSku(NotFound):
    """No product has that SKU."""

    code = "unknown_sku"


class DuplicateBarcode(Conflict):
    """A barcode given to a product belongs to another one (archived ones keep theirs)."""

    code = "duplicate_barcode"

    def __init__(self, detail: str, *, barcode: str, sku: str) -> None:
        super().__init__(detail)
        self.barcode = barcode
        self.sku = sku


@dataclass(frozen=True, slots=True)
class PriceQuote:
    """What one unit of a SKU costs now."""

    sku: str
    price_cents: int
    currency: str


def _now_ms() -> int:
    return int(utcnow().timestamp() * 1000)


def create(session: Session, *, data: dict[str, Any]) -> Product:
    """Add a product; its SKU must be new, and its barcodes (in their stored form, see
    storekeeper.catalog.barcodes) no other product's."""
    fields = dict(data)
    codes = fields.pop("barcodes", None) or []
    if session.get(Product, fields["sku"]) is not None:
        raise DuplicateSku(f"SKU {fields['sku']} exists already")
    stamp = str(hlc.server_stamp(_now_ms(), ()))
    product = Product(
        **fields, field_hlcs=dict.fromkeys(LWW_FIELDS, stamp), hlc=stamp, barcode_rows=[]
    )
    session.add(product)
    if codes:
        _set_barcodes(session, product, codes)
    else:
        session.flush()
    outbox.record(session, ProductChanged(sku=product.sku, version=1, change="created"))
    return product


def get_or_raise(session: Session, *, sku: str) -> Product:
    """The product with ``sku``."""
    product = session.get(Product, sku)
    if product is None:
        raise UnknownSku(f"no product with SKU {sku}")
    return product


def get_view(connection: Connection, *, sku: str) -> ProductRead:
    """The API view of one product, by a prebuilt Core statement: the hottest read of a shop."""
    rows = connection.execute(_BY_SKU, {"sku": sku}).mappings().all()
    if not rows:
        raise UnknownSku(f"no product with SKU {sku}")
    row = rows[0]
    codes = sorted(r["barcode_code"] for r in rows if r["barcode_code"] is not None)
    return ProductRead.model_validate(
        {**row, "barcodes": codes, "archived": row["archived_at"] is not None}
    )


def by_barcode(session: Session, *, code: str) -> Product | None:
    """The product (archived or not) that has the barcode ``code`` (any accepted form of it,
    see storekeeper.catalog.barcodes), or None; an invalid code belongs to none."""
    try:
        stored = barcodes.normalise(code)
    except barcodes.InvalidBarcode:
        return None
    return session.scalar(select(Product).join(ProductBarcode).where(ProductBarcode.code == stored))


Listed = Literal["active", "archived", "all"]
"""Which products a list shows: on sale (the API's list), archived ones, or both."""


def list_(
    session: Session,
    *,
    q: str | None,
    limit: int,
    cursor: str | None,
    listed: Listed = "active",
    barcode: str | None = None,
) -> tuple[list[Product], str | None]:
    """Products in SKU order matching ``q`` (SKU or name, case-insensitive), one page; active
    ones unless ``listed`` asks for the archived ones or all. With ``barcode``, only the
    product that has that barcode (in any accepted form; an invalid one matches nothing)."""
    query = select(Product).order_by(Product.sku)
    if barcode is not None:
        try:
            stored = barcodes.normalise(barcode)
        except barcodes.InvalidBarcode:
            return [], None
        # The code is the barcode table's primary key: one index lookup, whatever the catalog.
        holder = select(ProductBarcode.sku).where(ProductBarcode.code == stored)
        query = query.where(Product.sku == holder.scalar_subquery())
    if listed == "active":
        query = query.where(Product.archived_at.is_(None))
    elif listed == "archived":
        query = query.where(Product.archived_at.is_not(None))
    if q:
        escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        query = query.where(
            or_(
                unicode_lower(Product.sku).like(pattern, escape="\\"),
                unicode_lower(Product.name).like(pattern, escape="\\"),
            )
        )
    if cursor:
        query = query.where(Product.sku > _decode_cursor(cursor))
    limit = max(1, min(limit, MAX_PAGE))
    rows = list(session.scalars(query.limit(limit + 1)))
    next_cursor = _encode_cursor(rows[limit - 1].sku) if len(rows) > limit else None
    return rows[:limit], next_cursor


def get_for_update(session: Session, *, sku: str) -> Product:
    """The product with ``sku``, its row locked until the transaction ends (PostgreSQL)."""
    product = session.get(Product, sku, with_for_update=True, populate_existing=True)
    if product is None:
        raise UnknownSku(f"no product with SKU {sku}")
    return product


def update(
    session: Session,
    *,
    sku: str,
    changes: dict[str, Any],
    stamp: str | None = None,
    expected_version: int | None = None,
) -> Product:
    """Apply field changes; each effective edit bumps the version.

    With ``expected_version`` (the version the editor last read) the edit is refused with
    ``StaleVersion`` if the product has another version now, so that nobody overwrites a change
    they have not seen; it is checked on the locked row, so two such edits cannot both pass.

    ``changes["barcodes"]`` replaces the product's barcodes (stored forms; each must be no other
    product's, else ``DuplicateBarcode``); a different set is an edit like any other, though
    not one offline replicas make, so it carries no clock stamp.

    Every field it changes is stamped with a hybrid logical clock (``field_hlcs``): ``stamp``
    when an offline edit that won its merge is applied (storekeeper.sync), else a server stamp
    later than any the product holds, so a server edit always takes effect and an older offline
    edit of the same field, pushed later, loses. A field set to the value it has is not an edit
    and keeps its stamp, like the version. The row is locked so the stamps and the version
    cannot be lost to a concurrent edit.
    """
    product = get_for_update(session, sku=sku)
    if expected_version is not None and product.version != expected_version:
        raise StaleVersion(
            f"product {sku} changed since version {expected_version}: "
            f"it is at version {product.version} now",
            current=product.version,
        )
    changes = dict(changes)
    codes = changes.pop("barcodes", None)
    changed = {k: v for k, v in changes.items() if getattr(product, k) != v}
    low = changed.get("min_temp_c", product.min_temp_c)
    high = changed.get("max_temp_c", product.max_temp_c)
    if low is not None and high is not None and low > high:
        raise InvalidRequest("min_temp_c must not exceed max_temp_c", code="invalid_range")
    relabelled = codes is not None and _set_barcodes(session, product, codes)
    if not changed and not relabelled:
        return product
    stamped = [field for field in changed if field in LWW_FIELDS]
    if stamped:
        held = product.field_hlcs or {}
        new = stamp or str(hlc.server_stamp(_now_ms(), held.values()))
        product.field_hlcs = {**held, **dict.fromkeys(stamped, new)}
        product.hlc = str(hlc.newest(product.field_hlcs.values()))
    for key, value in changed.items():
        setattr(product, key, value)
    product.version += 1
    product.updated_at = utcnow()
    session.flush()
    outbox.record(session, ProductChanged(sku=sku, version=product.version, change="updated"))
    viewcache.note_changed(session, sku)
    return product


def archive(session: Session, *, sku: str) -> Product:
    """Withdraw a product from sale; history keeps it."""
    product = get_or_raise(session, sku=sku)
    if product.archived_at is None:
        product.archived_at = product.updated_at = utcnow()
        product.version += 1
        session.flush()
        outbox.record(session, ProductChanged(sku=sku, version=product.version, change="archived"))
        viewcache.note_changed(session, sku)
    return product


def quote(session: Session, *, skus: Iterable[str]) -> dict[str, PriceQuote]:
    """Current prices of the given active SKUs; raises UnknownSku naming the first missing one."""
    wanted = sorted(set(skus))
    rows = session.connection().execute(_PRICES, {"skus": wanted}).all()
    quotes = {row.sku: PriceQuote(row.sku, row.price_cents, row.currency) for row in rows}
    for sku in wanted:
        if sku not in quotes:
            raise UnknownSku(f"no product on sale with SKU {sku}")
    return quotes


def prices(session: Session, *, skus: Iterable[str] | None = None) -> dict[str, tuple[int, str]]:
    """``{sku: (price_cents, currency)}`` of every product (archived ones too: their stock is
    still worth something), or of the given SKUs; plain tuples, as a caller valuing all stock
    reads 100,000s of them. Chunked, so a long SKU list stays under SQLite's parameter limit."""
    columns = (_product.c.sku, _product.c.price_cents, _product.c.currency)
    connection = session.connection()
    if skus is None:
        rows = connection.execute(select(*columns)).all()
    else:
        wanted = sorted(set(skus))
        rows = []
        for start in range(0, len(wanted), 5000):
            rows += connection.execute(
                select(*columns).where(_product.c.sku.in_(wanted[start : start + 5000]))
            ).all()
    return {sku: (int(cents), currency) for sku, cents, currency in rows}


def prices_stamp(session: Session) -> tuple[int, int]:
    """(products, sum of their versions): changes whenever a product is added or edited (every
    edit, a price's included, bumps its version), so a reader may keep what it derived from
    :func:`prices` while the stamp stays the same."""
    count, versions = session.execute(
        select(func.count(), func.coalesce(func.sum(_product.c.version), 0))
    ).one()
    return int(count), int(versions)


def names_on_sale(session: Session, *, skus: Iterable[str]) -> dict[str, str]:
    """``{sku: name}`` of the given SKUs that are on sale (archived and unknown ones left out)."""
    wanted = sorted(set(skus))
    found: dict[str, str] = {}
    for start in range(0, len(wanted), 5000):
        rows = session.execute(
            select(_product.c.sku, _product.c.name).where(
                _product.c.sku.in_(wanted[start : start + 5000]), _product.c.archived_at.is_(None)
            )
        )
        found.update((sku, name) for sku, name in rows)
    return found


def sync_page(connection: Connection, *, after: str, limit: int) -> list[SyncProduct]:
    """Products (archived too) with a SKU after ``after``, in SKU order, as sync rows."""
    rows = connection.execute(_SYNC_PAGE, {"after": after, "limit": limit}).all()
    if not rows:
        return []
    # The page's barcodes by a range of the SKU index, not a list of thousands of SKUs.
    codes = connection.execute(_SYNC_BARCODES_IN_RANGE, {"after": after, "last": rows[-1].sku})
    return _with_barcodes(rows, codes)


def sync_rows(connection: Connection, *, skus: Iterable[str]) -> dict[str, SyncProduct]:
    """The sync rows of the given SKUs that exist."""
    wanted = sorted(set(skus))
    rows = connection.execute(_SYNC_BY_SKU, {"skus": wanted}).all()
    if not rows:
        return {}
    codes = connection.execute(_SYNC_BARCODES_OF, {"skus": wanted})
    return {product.sku: product for product in _with_barcodes(rows, codes)}


def _with_barcodes(rows: Iterable[Any], codes: Iterable[Any]) -> list[SyncProduct]:
    held: dict[str, list[str]] = {}
    for sku, code in codes:
        held.setdefault(sku, []).append(code)
    return [
        SyncProduct(
            sku=row.sku,
            name=row.name,
            price_cents=row.price_cents,
            currency=row.currency,
            attributes=row.attributes,
            min_temp_c=row.min_temp_c,
            max_temp_c=row.max_temp_c,
            version=row.version,
            hlc=row.hlc,
            archived_at=row.archived_at,
            barcodes=sorted(held.get(row.sku, ())),
        )
        for row in rows
    ]


def _set_barcodes(session: Session, product: Product, codes: Iterable[str]) -> bool:
    """Give ``product`` exactly the barcodes ``codes`` (stored forms) and flush; whether that
    changed its set. A code another product has (archived ones too) is ``DuplicateBarcode``."""
    wanted = set(codes)
    held = {row.code: row for row in product.barcode_rows}
    if wanted == set(held):
        return False
    added = wanted - set(held)
    _ensure_free(session, sku=product.sku, codes=added)
    session.flush()  # what is pending before, outside the savepoint below
    try:
        # A savepoint: a concurrent transaction that took one of the codes since the check
        # (PostgreSQL) fails this insert, and the error can still name the product holding it.
        with session.begin_nested():
            for code in set(held) - wanted:
                product.barcode_rows.remove(held[code])
            for code in sorted(added):
                product.barcode_rows.append(ProductBarcode(code=code, sku=product.sku))
            session.flush()
    except IntegrityError:
        _ensure_free(session, sku=product.sku, codes=added)
        raise
    return True


def _ensure_free(session: Session, *, sku: str, codes: Iterable[str]) -> None:
    wanted = sorted(set(codes))
    if not wanted:
        return
    taken = session.execute(
        select(_barcode.c.code, _product.c.sku, _product.c.archived_at)
        .join(_product, _product.c.sku == _barcode.c.sku)
        .where(_barcode.c.code.in_(wanted), _barcode.c.sku != sku)
        .order_by(_barcode.c.code)
        .limit(1)
    ).first()
    if taken is not None:
        code, holder, archived_at = taken
        archived = " (archived; an archived product keeps its barcodes)" if archived_at else ""
        raise DuplicateBarcode(
            f"barcode {code} belongs to product {holder}{archived}", barcode=code, sku=holder
        )


def temperature_ranges(
    session: Session, *, skus: Iterable[str]
) -> set[tuple[float | None, float | None]]:
    """The distinct storage ranges (min, max) of the given products that have one.

    For telemetry alerts; chunked so that a warehouse of many SKUs stays under SQLite's limit
    of bound parameters.
    """
    wanted = sorted(set(skus))
    ranges: set[tuple[float | None, float | None]] = set()
    for start in range(0, len(wanted), 5000):
        rows = session.execute(
            select(Product.min_temp_c, Product.max_temp_c)
            .distinct()
            .where(
                Product.sku.in_(wanted[start : start + 5000]),
                or_(Product.min_temp_c.is_not(None), Product.max_temp_c.is_not(None)),
            )
        )
        ranges.update((low, high) for low, high in rows)
    return ranges


def exists(session: Session, *, sku: str) -> bool:
    """Whether a product (active or archived) has this SKU."""
    return session.scalar(select(Product.sku).where(Product.sku == sku)) is not None


def _encode_cursor(sku: str) -> str:
    return base64.urlsafe_b64encode(sku.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        sku = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequest("malformed cursor", code="invalid_cursor") from exc
    # Cursors we issue always hold a SKU; anything else (e.g. a NUL byte, which PostgreSQL
    # refuses in text, or the empty string lenient base64 makes of junk) is not ours.
    if not _CURSOR_SKU.fullmatch(sku):
        raise InvalidRequest("malformed cursor", code="invalid_cursor")
    return sku


def names(session: Session, *, skus: Iterable[str]) -> dict[str, str]:
    """The names of the given products (active or archived) that exist, by SKU."""
    wanted = sorted(set(skus))
    found: dict[str, str] = {}
    for start in range(0, len(wanted), 5000):  # under SQLite's limit of bound parameters
        rows = session.execute(
            select(Product.sku, Product.name).where(Product.sku.in_(wanted[start : start + 5000]))
        )
        found.update((sku, name) for sku, name in rows)
    return found


def skus_named(session: Session, *, text: str, limit: int) -> list[str]:
    """SKUs (in order) of at most ``limit`` products, archived too, whose name contains
    ``text`` in any case: for other contexts' lists that filter by product name."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    query = (
        select(Product.sku)
        .where(unicode_lower(Product.name).like(f"%{escaped}%", escape="\\"))
        .order_by(Product.sku)
        .limit(max(1, limit))
    )
    return list(session.scalars(query))
