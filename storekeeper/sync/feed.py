"""The pull use case: a replica's scope as a paged snapshot, then the changes since, in commit
order.

A pull without a cursor takes an outbox snapshot S0, then serves every product and every stock
row of the scope's warehouse as it is when the page is read (keyset pages on the primary keys,
Core rows: the initial pull of a big catalog is the bulk of sync's reads, bench W3). Then the
feed: the outbox rows committed after S0, batch by batch (``outbox.read_feed``), each turned into
the entity's state at the time of the pull. Changes that happened while the snapshot was paged
show up again in the feed, which is harmless (every change is an upsert or a delete of the
current state), and nothing committed after S0 is missed. Serving current state rather than the
event's payload also means a replica can never move an entity backwards.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Row
from sqlalchemy.engine import Connection

from storekeeper.accounts import policy
from storekeeper.accounts.domain import Principal
from storekeeper.catalog import service as catalog_service
from storekeeper.db import Database
from storekeeper.errors import Conflict
from storekeeper.events import outbox, restores, retention
from storekeeper.events.rows import FeedRow
from storekeeper.inventory import feed as inventory_feed
from storekeeper.inventory import warehouses as inventory_warehouses
from storekeeper.observability import metrics
from storekeeper.sync import cursor as cursors
from storekeeper.sync.cursor import Cursor

DEFAULT_LIMIT = 1000
MAX_LIMIT = 5000
FEED_TYPES = ("product.changed", "stock.changed", "sync.edit_lost")


class ResyncRequired(Conflict):
    """The cursor is from before a restore from a backup, ahead of the server, or older than
    what the outbox still holds (pruned past the offline window): start over."""

    code = "resync_required"


def pull(db: Database, *, principal: Principal, scope: str, since: str | None, limit: int) -> bytes:
    """One page of changes of ``scope`` after ``since``, as the JSON body of a ``PullPage``."""
    policy.ensure_scope(principal, scope)
    warehouse = scope.removeprefix("warehouse:")
    with db.reading() as session:
        if not inventory_warehouses.has_warehouse(session, code=warehouse):
            raise inventory_warehouses.UnknownWarehouse(f"no warehouse with code {warehouse}")
        connection = session.connection()
        now = outbox.snapshot(connection)
        generation = restores.generation(connection)
        if since is None:
            position = Cursor(
                scope=scope,
                db=cursors.database_kind(db.dialect),
                phase="products",
                since=cursors.snap(now),
                gen=generation,
            )
        else:
            position = cursors.decode(since, scope=scope, db=db.dialect)
            _ensure_same_history(position, generation)
            _ensure_not_ahead(position, now)
        held = position
        changes, position, has_more = _page(connection, position, warehouse, now, limit)
        if since is not None:
            # After the read, not before: a pass pruning in between would otherwise take rows
            # from under a cursor that was just cleared (each statement here is its own read).
            _ensure_not_pruned(connection, held)
    body = {"changes": changes, "cursor": cursors.encode(position), "has_more": has_more}
    metrics.SYNC_PULLS.inc()
    try:
        return orjson.dumps(body)
    except TypeError:  # an attribute orjson cannot write (an integer beyond 64 bits)
        return json.dumps(body, separators=(",", ":")).encode()


def _ensure_same_history(position: Cursor, generation: str) -> None:
    # A cursor from before a restore may hold changes the restored database never had: the
    # replica must not keep them, nor build on a position in another history.
    if position.gen != generation:
        raise ResyncRequired(
            "the database was restored from a backup since this cursor was issued: pull again "
            "without since"
        )


def _ensure_not_ahead(position: Cursor, now: outbox.Snapshot) -> None:
    for held in (position.since, position.until):
        if held is not None and held.xmax > now.xmax:
            raise ResyncRequired(
                "this cursor is ahead of the server (was the database restored?): pull again "
                "without since"
            )


def _ensure_not_pruned(connection: Connection, position: Cursor) -> None:
    # Pruning may have taken a row committed after the cursor's ``since`` (not ``xmin <
    # horizon``, nor any open transaction below it: on PostgreSQL those are the whole server's,
    # and up-to-date replicas would be sent back to the start; see ``retention.pruned_past``).
    if retention.pruned_past(connection, cursors.unsnap(position.since)):
        raise ResyncRequired(
            "this cursor is older than the server keeps changes for (offline longer than "
            "STOREKEEPER_SYNC_RETENTION_DAYS): pull again without since"
        )


def _page(
    connection: Connection, position: Cursor, warehouse: str, now: outbox.Snapshot, limit: int
) -> tuple[list[dict[str, Any]], Cursor, bool]:
    """Fill a page from the phase the cursor is in onwards; a full page means more is ready."""
    changes: list[dict[str, Any]] = []
    while True:
        room = limit - len(changes)
        if position.phase == "products":
            products = catalog_service.sync_page(
                connection, after=position.after_sku or "", limit=room
            )
            changes.extend(_product(row) for row in products)
            if len(products) == room:
                return changes, _at(position, after_sku=products[-1].sku), True
            position = _at(position, phase="stock", after_sku=None)
        elif position.phase == "stock":
            levels = inventory_feed.sync_page(
                connection, warehouse=warehouse, after=position.after_sku or "", limit=room
            )
            changes.extend(_stock(row, warehouse) for row in levels)
            if len(levels) == room:
                return changes, _at(position, after_sku=levels[-1].sku), True
            position = _at(position, phase="feed", after_sku=None)
        else:
            return _feed(connection, position, warehouse, now, room, changes)


def _feed(
    connection: Connection,
    position: Cursor,
    warehouse: str,
    now: outbox.Snapshot,
    room: int,
    changes: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], Cursor, bool]:
    since = cursors.unsnap(position.since)
    until = cursors.unsnap(position.until) if position.until is not None else now
    rows = outbox.read_feed(
        connection,
        since=since,
        until=until,
        after=position.after,
        types=FEED_TYPES,
        aggregates=(("product", None), ("stock", f"@{warehouse}")),
        limit=room,
    )
    changes.extend(_current(connection, rows, warehouse))
    if len(rows) == room:  # the batch up to ``until`` may hold more
        last = rows[-1]
        return (
            changes,
            _at(position, until=cursors.snap(until), after=(last.key, last.position)),
            True,
        )
    # The batch is done: the next pull starts a new one from here.
    return changes, _at(position, since=cursors.snap(until), until=None, after=None), False


def _current(
    connection: Connection, rows: Sequence[FeedRow], warehouse: str
) -> list[dict[str, Any]]:
    """The current state of each entity the rows name, once each, at its last mention."""
    product_skus = {row.aggregate_id for row in rows if row.aggregate_type == "product"}
    stock_skus = {
        row.aggregate_id.rpartition("@")[0] for row in rows if row.aggregate_type == "stock"
    }
    products = catalog_service.sync_rows(connection, skus=product_skus)
    levels = inventory_feed.sync_rows(connection, warehouse=warehouse, skus=stock_skus)
    seen: set[tuple[str, str]] = set()
    changes: list[dict[str, Any]] = []
    for row in reversed(rows):
        if row.aggregate_type == "product":
            key = ("product", row.aggregate_id)
            state = products.get(row.aggregate_id)
            change = _product(state) if state is not None else None
        else:
            sku = row.aggregate_id.rpartition("@")[0]
            key = ("stock", sku)
            level = levels.get(sku)
            change = _stock(level, warehouse) if level is not None else None
        if key in seen or change is None:
            continue
        seen.add(key)
        changes.append(change)
    changes.reverse()
    return changes


def _product(row: catalog_service.SyncProduct) -> dict[str, Any]:
    if row.archived_at is not None:
        return {
            "entity": "product",
            "key": row.sku,
            "op": "delete",
            "data": None,
            "version": row.version,
        }
    data = {
        "sku": row.sku,
        "name": row.name,
        "price_cents": row.price_cents,
        "currency": row.currency,
        "attributes": row.attributes,
        "min_temp_c": row.min_temp_c,
        "max_temp_c": row.max_temp_c,
        "barcodes": row.barcodes,
        "hlc": row.hlc,
    }
    return {
        "entity": "product",
        "key": row.sku,
        "op": "upsert",
        "data": data,
        "version": row.version,
    }


def _stock(row: Row[*tuple[Any, ...]], warehouse: str) -> dict[str, Any]:
    data = {
        "sku": row.sku,
        "warehouse": warehouse,
        "on_hand": row.on_hand,
        "reserved": row.reserved,
        "available": row.on_hand - row.reserved,
    }
    return {"entity": "stock", "key": row.sku, "op": "upsert", "data": data, "version": row.version}


def _at(position: Cursor, **changes: Any) -> Cursor:
    return position.model_copy(update=changes)
