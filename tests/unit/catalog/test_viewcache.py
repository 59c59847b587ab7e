"""The per-process cache of product views: LRU bound, drops, the put race, the staleness bound."""

from __future__ import annotations

from storekeeper.catalog.viewcache import CachedView, ProductViewCache
from storekeeper.events.rows import FeedRow


class Clock:
    """A hand-moved monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _row(sku: str, type_: str = "product.changed", change: str = "updated") -> FeedRow:
    return FeedRow(1, 1, type_, "product", sku, {"sku": sku, "change": change})


def _fresh_cache(size: int = 3, max_stale_s: float = 1.0) -> tuple[ProductViewCache, Clock]:
    clock = Clock()
    cache = ProductViewCache(size=size, max_stale_s=max_stale_s, clock=clock)
    cache.on_outbox([], clock.now)
    return cache, clock


def test_views_are_served_only_while_the_outbox_read_is_recent_enough() -> None:
    clock = Clock()
    cache = ProductViewCache(size=3, max_stale_s=1.0, clock=clock)
    cache.put("A", CachedView(b"{}", 1), cache.ticket())
    assert cache.get("A") is None  # the hub has not read the outbox yet: never served
    cache.on_outbox([], began_at=clock.now)
    assert cache.get("A") == CachedView(b"{}", 1)
    clock.now += 1.0
    assert cache.get("A") is not None  # exactly at the bound
    clock.now += 0.01
    assert cache.get("A") is None  # past it (the hub fell behind): the database answers
    cache.on_outbox([], began_at=clock.now - 0.5)
    assert cache.get("A") is not None


def test_a_changed_product_is_dropped_and_others_stay() -> None:
    cache, clock = _fresh_cache()
    cache.put("A", CachedView(b"a", 1), cache.ticket())
    cache.put("B", CachedView(b"b", 1), cache.ticket())
    cache.put("C", CachedView(b"c", 1), cache.ticket())
    cache.on_outbox([_row("A"), _row("B", "stock.changed"), _row("C", change="created")], clock.now)
    assert cache.get("A") is None
    assert cache.get("B") is not None
    assert cache.get("C") is not None  # read after its creation: nothing older to drop


def test_a_view_read_before_a_drop_is_not_kept_after_it() -> None:
    cache, _ = _fresh_cache()
    ticket = cache.ticket()  # a request starts reading version 1 from the database ...
    cache.drop(["A"])  # ... version 2 commits and its drop comes first ...
    cache.put("A", CachedView(b"v1", 1), ticket)  # ... then the old read would be kept
    assert cache.get("A") is None


def test_the_least_recently_used_view_goes_first() -> None:
    cache, _ = _fresh_cache(size=2)
    cache.put("A", CachedView(b"a", 1), cache.ticket())
    cache.put("B", CachedView(b"b", 1), cache.ticket())
    assert cache.get("A") is not None  # A is now more recent than B
    cache.put("C", CachedView(b"c", 1), cache.ticket())
    assert len(cache) == 2
    assert cache.get("B") is None
    assert cache.get("A") is not None and cache.get("C") is not None


def test_size_zero_keeps_nothing_and_a_lost_position_clears_all() -> None:
    off, _ = _fresh_cache(size=0)
    off.put("A", CachedView(b"a", 1), off.ticket())
    assert off.get("A") is None
    cache, _ = _fresh_cache()
    cache.put("A", CachedView(b"a", 1), cache.ticket())
    cache.on_outbox_lost()
    assert len(cache) == 0


def test_the_etag_is_the_quoted_version() -> None:
    assert CachedView(b"{}", 7).etag == '"7"'
