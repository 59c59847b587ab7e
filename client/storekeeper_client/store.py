"""The replica's SQLite file: the server copy, the queue of local mutations, verdicts, metadata.

Every method runs under one re-entrant lock and each write is one ``BEGIN IMMEDIATE``
transaction, so a crash at any point leaves either the state before or the state after it.
Network I/O never happens here: the lock is held only for short local work, so local writes go
on while a sync waits on the network.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from storekeeper_client.hlc import Clock
from storekeeper_client.snapshot import Snapshot

SCHEMA_VERSION = 2
"""1: the first files. 2: the ``barcode`` index of the products' barcodes."""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS product (
    sku TEXT PRIMARY KEY, data TEXT NOT NULL, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS barcode (code TEXT PRIMARY KEY, sku TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS barcode_sku ON barcode (sku);
CREATE TABLE IF NOT EXISTS stock (
    sku TEXT PRIMARY KEY, data TEXT NOT NULL, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    hlc TEXT NOT NULL,
    created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS verdict (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT NOT NULL);
"""

Row = dict[str, Any]


class Store:
    """One open replica file; thread-safe (one connection, one lock)."""

    def __init__(self, path: str | Path) -> None:
        # check_same_thread=False: the lock below serializes every use of the connection.
        self._conn = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=30
        )
        self._conn.row_factory = sqlite3.Row
        self.lock = threading.RLock()
        try:
            with self.lock:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=FULL")  # a stored verdict or page stays
                self._create_or_upgrade()
        except BaseException:
            self._conn.close()
            raise

    def _create_or_upgrade(self) -> None:
        """Create a new file's tables, or bring an older file up to ``SCHEMA_VERSION``.

        One transaction: a file is at its old version or the new one, never half upgraded.
        Every table is ``CREATE ... IF NOT EXISTS``, so creating them is also the first step of
        each upgrade; what is left is filling what a new table derives from the copy.
        """
        with self.transaction() as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            stored = self.get_meta("schema_version")
            if stored is not None and int(stored) > SCHEMA_VERSION:
                # Raised inside the transaction: the file is left exactly as it was.
                raise ValueError(
                    f"this replica file has schema version {stored}, newer than this client "
                    f"knows ({SCHEMA_VERSION}): open it with a newer storekeeper"
                )
            if stored is not None and int(stored) < 2:
                # The barcode index, from the products the copy holds. A copy pulled from a
                # server without barcodes has none; the server's product.changed events bring
                # them when they are set, as for any other edit.
                for sku, data in conn.execute("SELECT sku, data FROM product").fetchall():
                    self._index_barcodes(conn, str(sku), json.loads(data))
            self.set_meta("schema_version", str(SCHEMA_VERSION))

    def close(self) -> None:
        """Close the file; the object is unusable afterwards."""
        with self.lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One local transaction, taken for writing up front (re-entrant: nested is joined)."""
        with self.lock:
            if self._conn.in_transaction:
                yield self._conn
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # --- metadata ------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        """A stored setting, or None."""
        with self.lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str | None) -> None:
        """Store (or with None, drop) a setting."""
        with self.transaction() as conn:
            if value is None:
                conn.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )

    def clock(self) -> Clock:
        """The stored hybrid logical clock state."""
        raw = self.get_meta("hlc")
        if raw is None:
            return Clock()
        wall_ms, counter = json.loads(raw)
        return Clock(int(wall_ms), int(counter))

    def set_clock(self, clock: Clock) -> None:
        """Store the clock state (inside the caller's transaction, if any)."""
        self.set_meta("hlc", json.dumps([clock.wall_ms, clock.counter]))

    # --- server copy -----------------------------------------------------------------------------

    def copy_rows(self, entity: str) -> list[Row]:
        """Every stored row of ``entity`` (``product`` or ``stock``), in SKU order."""
        table = _table(entity)
        with self.lock:
            rows = self._conn.execute(f"SELECT data FROM {table} ORDER BY sku").fetchall()  # noqa: S608
        return [json.loads(row[0]) for row in rows]

    def copy_row(self, entity: str, sku: str) -> Row | None:
        """One stored row of ``entity``, or None."""
        table = _table(entity)
        with self.lock:
            row = self._conn.execute(
                f"SELECT data FROM {table} WHERE sku = ?",  # noqa: S608
                (sku,),
            ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def product_sku_of_barcode(self, code: str) -> str | None:
        """The SKU of the stored product that has the barcode ``code`` (stored form), or None."""
        with self.lock:
            row = self._conn.execute("SELECT sku FROM barcode WHERE code = ?", (code,)).fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def _index_barcodes(conn: sqlite3.Connection, sku: str, data: Row | None) -> None:
        """Make the barcode index hold exactly the barcodes of ``data`` for ``sku``.

        ``OR REPLACE``: a code moved from one product to another may arrive on the new one
        before the old one's change (pages show each product as it is when read); the newer
        arrival wins, and the old product's own change later removes only what is still its.
        """
        conn.execute("DELETE FROM barcode WHERE sku = ?", (sku,))
        for code in (data or {}).get("barcodes") or ():
            conn.execute(
                "INSERT OR REPLACE INTO barcode (code, sku) VALUES (?, ?)", (str(code), sku)
            )

    def apply_page(self, changes: list[Row], cursor: str) -> None:
        """Store one pulled page and its cursor in ONE transaction, observing product stamps.

        Applying a page twice is harmless (every change is an entity's whole state), and the
        cursor moves only with its page: an interruption repeats at most the page in flight.
        """
        with self.transaction() as conn:
            clock = self.clock()
            for change in changes:
                table = _table(str(change["entity"]))
                key = str(change["key"])
                if change["op"] == "delete":
                    conn.execute(f"DELETE FROM {table} WHERE sku = ?", (key,))  # noqa: S608
                    if table == "product":
                        self._index_barcodes(conn, key, None)
                    continue
                data = change["data"]
                conn.execute(
                    f"INSERT INTO {table} (sku, data, version) VALUES (?, ?, ?) "  # noqa: S608
                    "ON CONFLICT (sku) DO UPDATE SET data = excluded.data, "
                    "version = excluded.version",
                    (key, json.dumps(data), int(change["version"])),
                )
                if table == "product":
                    clock = clock.observe(data.get("hlc"))
                    self._index_barcodes(conn, key, data)
            self.set_clock(clock)
            self.set_meta("cursor", cursor)

    def load_snapshot(self, snapshot: Snapshot) -> None:
        """Replace the server copy by a downloaded snapshot, and store its cursor, in ONE
        transaction: one ``executemany`` per table, the documents stored as the server wrote
        them. The clock observes the snapshot's newest product stamp (the same as observing
        every product's). Interrupted, the file is as before; the queue is not touched."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM product")
            conn.execute("DELETE FROM barcode")
            conn.execute("DELETE FROM stock")
            # The version arrives as text; the INTEGER column's affinity stores it as a number.
            conn.executemany(
                "INSERT INTO product (sku, version, data) VALUES (?, ?, ?)",
                snapshot.rows("product"),
            )
            conn.executemany(
                "INSERT INTO stock (sku, version, data) VALUES (?, ?, ?)", snapshot.rows("stock")
            )
            conn.executemany(
                "INSERT OR REPLACE INTO barcode (code, sku) VALUES (?, ?)",
                snapshot.rows("barcode"),
            )
            self.set_clock(self.clock().observe(snapshot.newest_hlc))
            self.set_meta("cursor", snapshot.cursor)

    def clear_copy(self) -> None:
        """Drop the server copy and the cursor, keeping the queue: the next pull starts over."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM product")
            conn.execute("DELETE FROM barcode")
            conn.execute("DELETE FROM stock")
            self.set_meta("cursor", None)

    # --- queue and verdicts ----------------------------------------------------------------------

    def enqueue(self, mutation: Row, created_ms: int) -> None:
        """Append a mutation (``id``, ``type``, ``data``, ``hlc``) to the queue."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO queue (id, type, data, hlc, created_ms) VALUES (?, ?, ?, ?, ?)",
                (
                    mutation["id"],
                    mutation["type"],
                    json.dumps(mutation["data"]),
                    mutation["hlc"],
                    created_ms,
                ),
            )

    def queued(self, *, up_to: int | None = None, limit: int | None = None) -> list[Row]:
        """Queued mutations oldest first, each with its ``seq``; optionally up to a ``seq``."""
        sql = "SELECT seq, id, type, data, hlc, created_ms FROM queue"
        params: list[int] = []
        if up_to is not None:
            sql += " WHERE seq <= ?"
            params.append(up_to)
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self.lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [{**dict(row), "data": json.loads(row["data"])} for row in rows]

    def last_seq(self) -> int:
        """The ``seq`` of the newest queued mutation, 0 if the queue is empty."""
        with self.lock:
            row = self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM queue").fetchone()
        return int(row[0])

    def settle(self, verdicts: list[Row]) -> None:
        """Move mutations with a verdict (``id``, ``status``, ``detail``) out of the queue.

        One transaction: a mutation is either still queued or has its verdict, never neither.
        """
        with self.transaction() as conn:
            for verdict in verdicts:
                row = conn.execute(
                    "SELECT type, data FROM queue WHERE id = ?", (verdict["id"],)
                ).fetchone()
                if row is None:  # settled before (an answer repeated): nothing to move
                    continue
                conn.execute("DELETE FROM queue WHERE id = ?", (verdict["id"],))
                conn.execute(
                    "INSERT OR REPLACE INTO verdict (id, type, data, status, detail) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (
                        verdict["id"],
                        row["type"],
                        row["data"],
                        verdict["status"],
                        json.dumps(verdict["detail"]),
                    ),
                )

    def verdicts(self) -> list[Row]:
        """Every stored verdict, oldest first."""
        with self.lock:
            rows = self._conn.execute(
                "SELECT id, type, data, status, detail FROM verdict ORDER BY seq"
            ).fetchall()
        return [
            {**dict(row), "data": json.loads(row["data"]), "detail": json.loads(row["detail"])}
            for row in rows
        ]


def _table(entity: str) -> str:
    # Table names come from this fixed map only, never from the wire: no SQL injection.
    if entity == "product":
        return "product"
    if entity == "stock":
        return "stock"
    raise ValueError(f"unknown entity {entity!r}")
