"""The catalog as sections of the sync snapshot (``storekeeper.sync.snapshot``, docs/sync.md).

A fresh replica needs every product on sale, each exactly as a pull would serve it. The database
builds each product's JSON document itself (``json_object`` / ``json_build_object``) and joins
the whole section into one string, so the attributes are passed through as stored, never
decoded into Python objects and written again, and no row becomes a Python object at all: this
is the whole catalog read at once (bench W3), and it is the cost of a cold snapshot.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table
from sqlalchemy.engine import Connection

from storekeeper.catalog.models import Product, ProductBarcode
from storekeeper.sync import hlc

_PRODUCT = cast(Table, Product.__table__).name
_BARCODE = cast(Table, ProductBarcode.__table__).name

# Each product on sale as three lines: sku, version, document. The document has the keys of a
# pull's product ``data`` in the same order; the barcodes come sorted by code point, as a pull
# sorts them (SQLite's BINARY collation, PostgreSQL's "C"). The database joins the whole section
# into one string (no row ever becomes a Python object); SKU order, which the replica's inserts
# into its primary key like best (order is not part of the format).
_SQLITE_PRODUCTS = f"""
SELECT count(*), group_concat(entry, char(10)) FROM (
    SELECT p.sku || char(10) || p.version || char(10) || json_object(
        'sku', p.sku, 'name', p.name, 'price_cents', p.price_cents, 'currency', p.currency,
        'attributes', json(p.attributes), 'min_temp_c', p.min_temp_c,
        'max_temp_c', p.max_temp_c,
        'barcodes', CASE WHEN h.sku IS NULL THEN json('[]') ELSE json((
            SELECT json_group_array(code) FROM (
                SELECT b.code FROM {_BARCODE} b WHERE b.sku = p.sku ORDER BY b.code)
        )) END,
        'hlc', p.hlc) AS entry
    FROM {_PRODUCT} p LEFT JOIN (SELECT DISTINCT sku FROM {_BARCODE}) h ON h.sku = p.sku
    WHERE p.archived_at IS NULL ORDER BY p.sku
)
"""  # noqa: S608 (table names from the models, no input)
# (Products without barcodes skip the per-product lookup; an ordered subquery, as SQLite
# before 3.44 has no ORDER BY inside an aggregate and a GROUP BY does not keep row order.)


def _pg_float(column: str) -> str:
    # float8's text is the shortest exact form, "2" for 2.0; a pull (through Python) writes
    # "2.0". The same number either way, but the replica should not see an int here and a
    # float there: integral values get their ".0" back.
    return (
        f"CASE WHEN p.{column} IS NULL THEN NULL "
        f"WHEN p.{column}::text ~ '^-?[0-9]+$' THEN (p.{column}::text || '.0')::json "
        f"ELSE p.{column}::text::json END"
    )


_PG_PRODUCTS = f"""
SELECT count(*), string_agg(
    p.sku || E'\\n' || p.version || E'\\n' || json_build_object(
        'sku', p.sku, 'name', p.name, 'price_cents', p.price_cents, 'currency', p.currency,
        'attributes', p.attributes, 'min_temp_c', {_pg_float("min_temp_c")},
        'max_temp_c', {_pg_float("max_temp_c")},
        'barcodes', coalesce(b.codes, '[]'::json), 'hlc', p.hlc)::text,
    E'\\n' ORDER BY p.sku)
FROM {_PRODUCT} p
LEFT JOIN (
    SELECT sku, json_agg(code ORDER BY code COLLATE "C") AS codes FROM {_BARCODE} GROUP BY sku
) b ON b.sku = p.sku
WHERE p.archived_at IS NULL
"""  # noqa: S608
# Each barcode of a product on sale as two lines: code, sku.
_SQLITE_BARCODES = f"""
SELECT count(*), group_concat(entry, char(10)) FROM (
    SELECT b.code || char(10) || b.sku AS entry
    FROM {_BARCODE} b JOIN {_PRODUCT} p ON p.sku = b.sku
    WHERE p.archived_at IS NULL ORDER BY b.code
)
"""  # noqa: S608
_PG_BARCODES = f"""
SELECT count(*), string_agg(b.code || E'\\n' || b.sku, E'\\n' ORDER BY b.code COLLATE "C")
FROM {_BARCODE} b JOIN {_PRODUCT} p ON p.sku = b.sku
WHERE p.archived_at IS NULL
"""  # noqa: S608
# The newest stamp "<wall ms>-<counter>-<node>" by (wall, counter), as a replica's clock
# compares them, found by the database (a catalog's every product has one).
_STAMPS = {
    "sqlite": f"""
SELECT hlc FROM {_PRODUCT} WHERE hlc IS NOT NULL AND archived_at IS NULL
ORDER BY CAST(hlc AS INTEGER) DESC, CAST(substr(hlc, instr(hlc, '-') + 1) AS INTEGER) DESC
LIMIT 1
""",  # noqa: S608 (CAST of text takes its leading digits)
    "postgresql": f"""
SELECT hlc FROM {_PRODUCT} WHERE hlc IS NOT NULL AND archived_at IS NULL
ORDER BY split_part(hlc, '-', 1)::bigint DESC, split_part(hlc, '-', 2)::bigint DESC LIMIT 1
""",  # noqa: S608
}


def product_section(connection: Connection) -> tuple[bytes, int]:
    """Every product on sale as a snapshot section (the last line without its newline), and
    how many; run inside the snapshot's one read transaction.

    Archived products are left out: a pull serves them as deletes, which a fresh replica has
    nothing to apply to.
    """
    postgres = connection.dialect.name == "postgresql"
    return _section(connection, _PG_PRODUCTS if postgres else _SQLITE_PRODUCTS)


def barcode_section(connection: Connection) -> tuple[bytes, int]:
    """Every barcode of a product on sale as a snapshot section (the replica's barcode index),
    and how many."""
    postgres = connection.dialect.name == "postgresql"
    return _section(connection, _PG_BARCODES if postgres else _SQLITE_BARCODES)


def newest_stamp(connection: Connection) -> str | None:
    """The greatest stamp of the products on sale: a replica's clock observes it, as it would
    every product's stamp in a pull (observing the greatest is the same)."""
    newest = connection.exec_driver_sql(_STAMPS[connection.dialect.name]).scalar()
    return None if newest is None else str(hlc.Hlc.parse(newest))


def _section(connection: Connection, sql: str) -> tuple[bytes, int]:
    """Run a ``SELECT count(*), <lines joined by newlines>`` query: the section's bytes (its
    last line is ended by the next section, or the end of the file) and its entry count."""
    count, text = connection.exec_driver_sql(sql).one()
    return (text.encode() if count else b""), int(count)
