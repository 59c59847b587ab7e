"""Many products at once, for imports: what is stored of a list of SKUs, and adding a batch of
new products in a few statements (with their barcodes and ``product.changed`` events).

Edits of existing products still go one by one through ``service.update`` (it locks the row and
stamps each changed field's clock); adding is what a first import of a catalog does 100,000s of
times, so it is one insert per table here (``storekeeper.db.insert_many``) rather than an ORM
object per product.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from storekeeper.catalog.events import ProductChanged
from storekeeper.catalog.models import Product, ProductBarcode
from storekeeper.catalog.service import LWW_FIELDS, DuplicateSku, _ensure_free, _now_ms
from storekeeper.db import insert_many, utcnow
from storekeeper.events import outbox
from storekeeper.sync import hlc

_product = cast(Table, Product.__table__)
_barcode = cast(Table, ProductBarcode.__table__)
_CHUNK = 5000  # SKUs per IN list: under SQLite's limit of bound parameters

FIELDS = ("name", "price_cents", "currency", "attributes", "min_temp_c", "max_temp_c", "barcodes")
"""What an import compares and sets, named as the API's product fields."""


@dataclass(frozen=True, slots=True)
class Stored:
    """What the catalog holds of one product, in the API's terms."""

    sku: str
    name: str
    price_cents: int
    currency: str
    attributes: dict[str, Any]
    min_temp_c: float | None
    max_temp_c: float | None
    barcodes: list[str]
    archived: bool

    def changed_fields(self, fields: Mapping[str, Any]) -> list[str]:
        """Those of ``fields`` (stored forms, barcodes sorted) whose value differs from this."""
        return [name for name in FIELDS if name in fields and getattr(self, name) != fields[name]]


def stored(session: Session, *, skus: Collection[str]) -> dict[str, Stored]:
    """The products (archived too) that have one of ``skus``, with their barcodes."""
    wanted = sorted(set(skus))
    found: dict[str, Stored] = {}
    codes: dict[str, list[str]] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        for sku, code in session.execute(
            select(_barcode.c.sku, _barcode.c.code).where(_barcode.c.sku.in_(chunk))
        ):
            codes.setdefault(sku, []).append(code)
        for row in session.execute(select(_product).where(_product.c.sku.in_(chunk))):
            found[row.sku] = Stored(
                sku=row.sku,
                name=row.name,
                price_cents=row.price_cents,
                currency=row.currency,
                attributes=row.attributes,
                min_temp_c=row.min_temp_c,
                max_temp_c=row.max_temp_c,
                barcodes=sorted(codes.get(row.sku, ())),
                archived=row.archived_at is not None,
            )
    return found


def barcode_holders(session: Session, *, codes: Iterable[str]) -> dict[str, str]:
    """``{code: sku}`` of those barcodes (stored forms) some product has."""
    wanted = sorted(set(codes))
    held: dict[str, str] = {}
    for start in range(0, len(wanted), _CHUNK):
        rows = session.execute(
            select(_barcode.c.code, _barcode.c.sku).where(
                _barcode.c.code.in_(wanted[start : start + _CHUNK])
            )
        )
        held.update((code, sku) for code, sku in rows)
    return held


def create_many(
    session: Session, *, products: Sequence[Mapping[str, Any]], checked: bool = False
) -> None:
    """Add new products (as ``service.create`` each, with the same checks: a SKU that exists
    is ``DuplicateSku``, a barcode another product holds ``DuplicateBarcode``), their barcodes
    and one ``product.changed`` event each, in a few statements.

    ``checked``: the caller read :func:`stored` for these SKUs in this transaction and found
    none, so they are not read again (a SKU added since still fails, on the primary key)."""
    if not products:
        return
    skus = [p["sku"] for p in products]
    taken = {} if checked else stored(session, skus=skus)
    if taken:
        first = min(taken)
        raise DuplicateSku(f"SKU {first} exists already")
    codes = [(code, p["sku"]) for p in products for code in p.get("barcodes") or ()]
    for start in range(0, len(codes), _CHUNK):
        # The same check and message as one product's create; the sku never matches a new one.
        _ensure_free(session, sku="", codes=[code for code, _ in codes[start : start + _CHUNK]])
    now = utcnow()
    stamp = str(hlc.server_stamp(_now_ms(), ()))
    stamps = dict.fromkeys(LWW_FIELDS, stamp)
    rows = [
        {
            "sku": p["sku"],
            "name": p["name"],
            "price_cents": p["price_cents"],
            "currency": p.get("currency", "EUR"),
            "attributes": p.get("attributes") or {},
            "min_temp_c": p.get("min_temp_c"),
            "max_temp_c": p.get("max_temp_c"),
            "version": 1,
            "created_at": now,
            "updated_at": now,
            "archived_at": None,
            "field_hlcs": stamps,
            "hlc": stamp,
        }
        for p in products
    ]
    connection = session.connection()
    insert_many(connection, _product, rows)
    if codes:
        insert_many(connection, _barcode, [{"code": c, "sku": s} for c, s in codes])
    outbox.record(session, *(ProductChanged(sku=sku, version=1, change="created") for sku in skus))
