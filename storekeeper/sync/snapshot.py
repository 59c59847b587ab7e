"""Initial sync from a snapshot: a scope's whole copy as one compact file, then the feed.

A fresh replica used to page through every product and stock row as JSON pull pages (bench W3:
the server's row handling was the limit). Instead it downloads a *snapshot*: the products on
sale, the scope's stock rows and the barcode index as text, one value per line, whose documents
the database wrote itself, gzip'd, with the pull cursor it is valid at on its first line. The
replica stores it with one ``executemany`` per table and pulls the feed from that cursor.

Consistency: the snapshot is read in ONE read transaction (``Database.consistent_read``), and
the outbox position in its cursor is taken in that same transaction. So the copy holds exactly
the writes that position has seen; every later write is in the feed after it (on PostgreSQL
the position is the transaction's own snapshot, xmin/xmax/in-progress list, as for pulls).

Caching: building costs a full read of the catalog and the scope's stock, so a built snapshot
is kept per scope (in this process, at most ``MAX_ENTRIES``, least recently used dropped) and
served again while it is still *current* (no change of the scope's products or stock has been
committed since its position) or younger than ``REUSE_S``: an older snapshot is still correct
(the replica pulls the feed from its cursor), only the feed to catch up grows. It is never
served across a restore from a backup (another generation) or once the outbox was pruned past
its position (its cursor would be refused with ``resync_required``).
"""

from __future__ import annotations

import queue
import threading
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass

import orjson

from storekeeper.accounts import policy
from storekeeper.accounts.domain import Principal
from storekeeper.catalog import snapshot as catalog_snapshot
from storekeeper.db import Database
from storekeeper.events import outbox, restores, retention
from storekeeper.inventory import feed as inventory_feed
from storekeeper.inventory import warehouses as inventory_warehouses
from storekeeper.observability import metrics
from storekeeper.sync import cursor as cursors
from storekeeper.sync.cursor import Cursor
from storekeeper.sync.feed import FEED_TYPES

FORMAT = "storekeeper-snapshot/1"
MEDIA_TYPE = "text/plain; charset=utf-8"
REUSE_S = 60.0
"""A cached snapshot older than this is rebuilt once the scope has changed since it."""
MAX_ENTRIES = 8
"""Cached snapshots per process (one per scope; ~5 MB gzip'd for 100k products)."""
COMPRESS_LEVEL = 1
"""gzip level: level 6 is ~15 % smaller and ~3x slower to build; the bytes are cached."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One built snapshot of a scope: the gzip'd body and what it is valid at."""

    scope: str
    generation: str
    position: outbox.Snapshot
    built_at: float
    """``time.monotonic()`` when it was built."""
    body: bytes
    """The gzip'd file (docs/sync.md, "Initial sync from a snapshot")."""
    size: int
    """Bytes of the file before compression."""
    rows: int


class SnapshotCache:
    """The snapshots this process built, per scope; thread-safe, one build per scope at once."""

    def __init__(self, *, reuse_s: float = REUSE_S, max_entries: int = MAX_ENTRIES) -> None:
        self.reuse_s = reuse_s
        self.max_entries = max_entries
        self._entries: OrderedDict[str, Snapshot] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}
        self.builds = 0
        """How many snapshots this cache built (tests and the bench read it)."""

    def get(self, scope: str) -> Snapshot | None:
        """The cached snapshot of ``scope``, if any (marked recently used)."""
        with self._lock:
            found = self._entries.get(scope)
            if found is not None:
                self._entries.move_to_end(scope)
            return found

    def put(self, built: Snapshot) -> None:
        """Keep ``built`` as its scope's snapshot, dropping the least recently used beyond
        ``max_entries``."""
        with self._lock:
            self._entries[built.scope] = built
            self._entries.move_to_end(built.scope)
            self.builds += 1
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def building(self, scope: str) -> threading.Lock:
        """The lock a builder of ``scope`` holds: concurrent first syncs build once."""
        with self._lock:
            return self._building.setdefault(scope, threading.Lock())

    def clear(self) -> None:
        """Forget every snapshot."""
        with self._lock:
            self._entries.clear()


def get(db: Database, cache: SnapshotCache, *, principal: Principal, scope: str) -> Snapshot:
    """The snapshot of ``scope`` to serve now: a cached one that is still good, else a new one.

    403 for a scope the caller may not sync, 404 for an unknown warehouse.
    """
    policy.ensure_scope(principal, scope)
    warehouse = scope.removeprefix("warehouse:")
    with db.reading() as session:
        if not inventory_warehouses.has_warehouse(session, code=warehouse):
            raise inventory_warehouses.UnknownWarehouse(f"no warehouse with code {warehouse}")
    cached = cache.get(scope)
    if cached is None or not _still_good(db, cache, cached, warehouse):
        with cache.building(scope):
            # Another request may have built it while this one waited.
            cached = cache.get(scope)
            if cached is None or not _still_good(db, cache, cached, warehouse):
                built = build(db, scope=scope)
                cache.put(built)
                metrics.SYNC_SNAPSHOTS.labels(source="built").inc()
                return built
    metrics.SYNC_SNAPSHOTS.labels(source="cached").inc()
    return cached


def _still_good(db: Database, cache: SnapshotCache, cached: Snapshot, warehouse: str) -> bool:
    """Whether ``cached`` may be served: same history, not pruned past, and current or young."""
    with db.reading() as session:
        connection = session.connection()
        now = outbox.snapshot(connection)
        if restores.generation(connection) != cached.generation:
            return False
        if cached.position.xmax > now.xmax:  # the database went back (restored over us)
            return False
        if retention.pruned_past(connection, cached.position):
            return False
        if time.monotonic() - cached.built_at <= cache.reuse_s:
            return True
        # Older: still served if nothing of the scope changed since (the same version).
        newer = outbox.read_feed(
            connection,
            since=cached.position,
            until=now,
            after=None,
            types=FEED_TYPES,
            aggregates=(("product", None), ("stock", f"@{warehouse}")),
            limit=1,
        )
        return not newer


def build(db: Database, *, scope: str) -> Snapshot:
    """Read the scope's copy and the position it is valid at, in one read transaction.

    Each section is compressed in another thread while the next one is read (zlib and the
    database drivers release the GIL), so on a server with a core to spare the compression
    overlaps the reads.
    """
    warehouse = scope.removeprefix("warehouse:")
    gz = _Gzip()
    try:
        with db.consistent_read() as connection:
            # The first statement fixes the transaction's snapshot; the outbox position read
            # here is that snapshot (PostgreSQL) or the newest id it sees (SQLite).
            position = outbox.snapshot(connection)
            generation = restores.generation(connection)
            cursor = Cursor(
                scope=scope,
                db=cursors.database_kind(db.dialect),
                phase="feed",
                since=cursors.snap(position),
                gen=generation,
            )
            header = {
                "format": FORMAT,
                "scope": scope,
                "cursor": cursors.encode(cursor),
                "hlc": catalog_snapshot.newest_stamp(connection),
            }
            gz.add(orjson.dumps(header))
            products, product_count = catalog_snapshot.product_section(connection)
            gz.add(products)
            stock, stock_count = inventory_feed.snapshot_section(connection, warehouse=warehouse)
            gz.add(stock)
            codes, code_count = catalog_snapshot.barcode_section(connection)
            gz.add(codes)
        counts = {"products": product_count, "stock": stock_count, "barcodes": code_count}
        gz.add(orjson.dumps(counts))
    finally:
        body = gz.finish()
    return Snapshot(
        scope=scope,
        generation=generation,
        position=position,
        built_at=time.monotonic(),
        body=body,
        size=gz.size,
        rows=product_count + stock_count,
    )


class _Gzip:
    """One gzip stream of sections, each a run of lines (its last newline added here),
    compressed in a thread of its own in the order added; never joined uncompressed."""

    def __init__(self) -> None:
        self._compressor = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        self._pending: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._pieces: list[bytes] = []
        self._failed: BaseException | None = None
        self.size = 0
        """Bytes before compression."""
        self._thread = threading.Thread(target=self._run, name="snapshot-gzip", daemon=True)
        self._thread.start()

    def add(self, section: bytes) -> None:
        """Queue ``section`` (nothing if empty) and its ending newline."""
        if section:
            self._pending.put(section)
            self.size += len(section) + 1

    def finish(self) -> bytes:
        """The whole gzip file, once everything queued is compressed."""
        self._pending.put(None)
        self._thread.join()
        if self._failed is not None:
            raise self._failed
        return b"".join(self._pieces)

    def _run(self) -> None:
        try:
            while (section := self._pending.get()) is not None:
                self._pieces.append(self._compressor.compress(section))
                self._pieces.append(self._compressor.compress(b"\n"))
            self._pieces.append(self._compressor.flush())
        except BaseException as exc:  # reported by finish(), in the building thread
            self._failed = exc
