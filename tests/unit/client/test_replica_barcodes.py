"""A replica's barcode index: found offline by any form of a code, kept in step with pulled
pages, and built when a file of the first schema version is opened."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from storekeeper.client import Replica
from storekeeper_client.store import SCHEMA_VERSION, Store

EAN13 = "4006381333931"
UPC = "036000291452"
EAN8 = "96385074"


def upsert(sku: str, version: int, *codes: str, name: str | None = None) -> dict[str, Any]:
    data = {"sku": sku, "name": name or sku, "price_cents": 100, "barcodes": list(codes)}
    return {"entity": "product", "key": sku, "op": "upsert", "version": version, "data": data}


def delete(sku: str, version: int) -> dict[str, Any]:
    return {"entity": "product", "key": sku, "op": "delete", "version": version, "data": None}


def found(replica: Replica, code: str) -> str | None:
    product = replica.product_by_barcode(code)
    return None if product is None else str(product["sku"])


def test_a_product_is_found_offline_by_any_form_of_its_barcode(tmp_path: Path) -> None:
    with Replica(tmp_path / "r.db", scope="warehouse:BER") as replica:
        replica._store.apply_page([upsert("MILK", 1, EAN13, UPC, "SHELF 7")], "c1")
        replica.update_product("MILK", name="Milk 1l")  # queued, not yet synced

        assert replica.product_by_barcode(EAN13) == {
            "sku": "MILK",
            "name": "Milk 1l",
            "price_cents": 100,
            "barcodes": [EAN13, UPC, "SHELF 7"],
        }
        assert found(replica, "0" + UPC) == "MILK"
        assert found(replica, f" {EAN13}\r\n") == "MILK"
        assert found(replica, "SHELF 7") == "MILK"
        assert found(replica, "shelf 7") is None
        assert found(replica, EAN8) is None
        assert found(replica, "4006381333932") is None
        assert found(replica, " \t") is None


def test_the_index_follows_each_page_even_when_a_moved_code_arrives_early(
    tmp_path: Path,
) -> None:
    with Replica(tmp_path / "r.db", scope="warehouse:BER") as replica:
        store = replica._store
        store.apply_page([upsert("A", 1, EAN13, EAN8), upsert("B", 1)], "c1")
        # EAN13 moved from A to B on the server; B's new state is pulled before A's.
        store.apply_page([upsert("B", 2, EAN13)], "c2")
        assert found(replica, EAN13) == "B"
        store.apply_page([upsert("A", 2, EAN8)], "c3")
        assert (found(replica, EAN13), found(replica, EAN8)) == ("B", "A")
        # Replaced, then archived (a delete), then the copy cleared for a resync.
        store.apply_page([upsert("A", 3, UPC)], "c4")
        assert (found(replica, EAN8), found(replica, UPC)) == (None, "A")
        store.apply_page([delete("B", 3)], "c5")
        assert found(replica, EAN13) is None
        store.clear_copy()
        assert found(replica, UPC) is None


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE product (sku TEXT PRIMARY KEY, data TEXT NOT NULL, version INTEGER NOT NULL);
CREATE TABLE stock (sku TEXT PRIMARY KEY, data TEXT NOT NULL, version INTEGER NOT NULL);
CREATE TABLE queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL,
    data TEXT NOT NULL, hlc TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE verdict (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL,
    data TEXT NOT NULL, status TEXT NOT NULL, detail TEXT NOT NULL);
"""


def _v1_file(path: Path) -> None:
    """A replica file as the first client version left it: products pulled from a server that
    already sent barcodes (MILK) and from before (BREAD, no field), one queued sale."""
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA)
    meta = {
        "schema_version": "1",
        "scope": "warehouse:BER",
        "replica_id": "till-1",
        "cursor": "cursor-7",
    }
    conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
    for sku, data in [
        ("MILK", {"sku": "MILK", "name": "Milk", "barcodes": [EAN13, UPC]}),
        ("BREAD", {"sku": "BREAD", "name": "Bread"}),
    ]:
        conn.execute("INSERT INTO product VALUES (?, ?, 1)", (sku, json.dumps(data)))
    conn.execute(
        "INSERT INTO queue (id, type, data, hlc, created_ms) VALUES (?, ?, ?, ?, ?)",
        (
            "7d0b6a4e-2f7e-4c59-9c2c-7f1f1b5d7a10",
            "stock.sell",
            json.dumps({"warehouse": "BER", "sku": "BREAD", "qty": 1}),
            "1-0-till-1",
            1,
        ),
    )
    conn.commit()
    conn.close()


def test_a_file_of_the_first_schema_version_gets_its_barcode_index_on_opening(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    _v1_file(path)

    with Replica(path) as replica:
        assert replica.replica_id == "till-1"
        assert found(replica, "0" + UPC) == "MILK"
        assert found(replica, EAN13) == "MILK"
        assert replica.product("BREAD") == {"sku": "BREAD", "name": "Bread"}
        assert [m.type for m in replica.pending()] == ["stock.sell"]
        assert replica._store.get_meta("cursor") == "cursor-7"
        assert replica._store.get_meta("schema_version") == str(SCHEMA_VERSION) == "2"
    with Replica(path) as reopened:  # upgraded once; opening again changes nothing
        assert found(reopened, EAN13) == "MILK"


def test_a_file_of_a_newer_client_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()

    with pytest.raises(ValueError, match="schema version 99, newer than this client"):
        Replica(path, scope="warehouse:BER")

    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("99",)
    conn.close()
