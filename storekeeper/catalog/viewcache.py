"""A per-process cache of product views (the JSON of ``GET /products/{sku}``), kept fresh by
the outbox.

Each API process holds up to ``catalog_cache_size`` views, least recently used dropped first.
An entry is dropped when its product changes: at once when this process commits the change
(the catalog service notes the SKU on the session), and at the live hub's next read of the
outbox when another process does (``product.changed`` rows, storekeeper.live.hub).

The staleness bound holds by construction: the cache serves only while the hub's last completed
read of the outbox *began* at most ``catalog_cache_max_stale_s`` ago. Every change committed
before that read began was in it and has been dropped, so a view served now misses at most the
changes of the last ``max_stale_s`` seconds. When the hub falls behind (database down, a stalled
loop) or does not run at all (an app without its lifespan), reads go to the database.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.orm import Session

from storekeeper.catalog.events import ProductChanged
from storekeeper.events.rows import FeedRow

CHANGED_SKUS = "storekeeper.catalog.changed_skus"
"""``Session.info`` key: SKUs whose product the session's transaction changed."""


@dataclass(frozen=True, slots=True)
class CachedView:
    """A product's view as sent: its JSON and the version its ``ETag`` names."""

    body: bytes
    version: int

    @property
    def etag(self) -> str:
        """The strong entity tag: the version, quoted, as ``If-Match`` takes it back."""
        return f'"{self.version}"'


def note_changed(session: Session, sku: str) -> None:
    """Record that ``session``'s transaction changes product ``sku`` (its views drop on commit)."""
    session.info.setdefault(CHANGED_SKUS, set()).add(sku)


class ProductViewCache:
    """An LRU of product views, safe to use from the event loop and the request threads."""

    def __init__(
        self, *, size: int, max_stale_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._size = size
        self._max_stale_s = max_stale_s
        self._clock = clock
        self._views: OrderedDict[str, CachedView] = OrderedDict()
        self._lock = threading.Lock()
        # Bumped by every drop: a view read from the database before a drop must not be put
        # after it (it may be the version the drop was for).
        self._drops = 0
        self._fresh_as_of: float | None = None

    @property
    def enabled(self) -> bool:
        """Whether the cache holds anything at all (size 0 turns it off)."""
        return self._size > 0

    def ticket(self) -> int:
        """Take before reading a view from the database; hand it back to ``put``."""
        return self._drops

    def get(self, sku: str) -> CachedView | None:
        """The cached view of ``sku``, if any and if the cache is fresh enough to serve it."""
        fresh_as_of = self._fresh_as_of
        if fresh_as_of is None or self._clock() - fresh_as_of > self._max_stale_s:
            return None
        view = self._views.get(sku)
        if view is None:
            return None
        # Moving to the end is what makes it LRU; skipped when another thread holds the lock
        # (a read that is a little less recent is harmless, waiting for the lock is not).
        if self._lock.acquire(blocking=False):
            try:
                if sku in self._views:
                    self._views.move_to_end(sku)
            finally:
                self._lock.release()
        return view

    def put(self, sku: str, view: CachedView, ticket: int) -> None:
        """Keep ``view``, read from the database after ``ticket`` was taken, unless anything
        was dropped since (it could be this SKU's newer version: let the next read fetch it)."""
        if not self._size:
            return
        with self._lock:
            if ticket != self._drops:
                return
            self._views[sku] = view
            self._views.move_to_end(sku)
            while len(self._views) > self._size:
                self._views.popitem(last=False)

    def drop(self, skus: Iterable[str]) -> None:
        """Forget the views of ``skus`` (their products changed)."""
        with self._lock:
            self._drops += 1
            for sku in skus:
                self._views.pop(sku, None)

    def clear(self) -> None:
        """Forget every view."""
        with self._lock:
            self._drops += 1
            self._views.clear()

    def __len__(self) -> int:
        return len(self._views)

    # -- fed by the live hub ------------------------------------------------------------------

    def on_outbox(self, rows: list[FeedRow], began_at: float) -> None:
        """The hub read the outbox (a read that began at ``began_at``, this cache's clock):
        drop the products of its ``product.changed`` rows; the cache is fresh as of then."""
        # A creation has no older view to drop (a SKU is created once); skipping it spares a
        # bulk import's rows, and a view read just after the creation is kept.
        skus = [
            row.aggregate_id
            for row in rows
            if row.type == ProductChanged.type and row.payload.get("change") != "created"
        ]
        if skus:
            self.drop(skus)
        self._fresh_as_of = began_at

    def on_outbox_lost(self) -> None:
        """The hub's position moved without reading the rows in between: start afresh."""
        self.clear()

    # -- this process's own commits -----------------------------------------------------------

    def listen_to_commits(self) -> None:
        """Drop the views a transaction of this process changed as soon as it commits."""
        if not event.contains(Session, "after_commit", self._after_commit):
            event.listen(Session, "after_commit", self._after_commit)

    def stop_listening(self) -> None:
        """Undo ``listen_to_commits``."""
        if event.contains(Session, "after_commit", self._after_commit):
            event.remove(Session, "after_commit", self._after_commit)

    def _after_commit(self, session: Session) -> None:
        # Read, not popped: every cache of the process (tests build several apps) sees it.
        skus = session.info.get(CHANGED_SKUS)
        if skus:
            self.drop(skus)
