"""Many stock changes in one warehouse at once, for imports: counts and receipts of hundreds of
SKUs in a few statements, with the same rules, ledger rows and ``stock.changed`` events as one
``ledger.record_count`` / ``ledger.record_movement`` each.

One statement per kind of row (stock rows created, locked and read, updated; movements; events)
instead of six per SKU: an import's batch then holds the write lock for milliseconds, not
seconds (bench W8).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, NamedTuple, cast

from sqlalchemy import Connection, Table, bindparam, func, insert, select, text
from sqlalchemy.orm import Session

from storekeeper.db import UTCDateTime, insert_many, utcnow
from storekeeper.errors import InvalidRequest
from storekeeper.events import outbox
from storekeeper.inventory.events import StockChanged
from storekeeper.inventory.ledger import MAX_COUNT, BelowReserved
from storekeeper.inventory.levels import known_skus
from storekeeper.inventory.models import Movement, StockLevel
from storekeeper.inventory.warehouses import require_warehouse
from storekeeper.observability import metrics
from storekeeper.observability.counting import count_on_commit

_stock = cast(Table, StockLevel.__table__)
_movement = cast(Table, Movement.__table__)
_UPDATE_FROM_ARRAYS = text(
    "UPDATE inventory_stock AS s SET on_hand = s.on_hand + u.delta, version = s.version + 1, "
    "updated_at = :at FROM unnest(CAST(:skus AS VARCHAR[]), CAST(:deltas AS BIGINT[])) "
    "AS u(sku, delta) WHERE s.sku = u.sku AND s.warehouse_code = :wh"
).bindparams(bindparam("at", type_=UTCDateTime()))
# Each row's id with its SKU (unique in a call): batched by insertmanyvalues on both
# databases, where asking for the rows in parameter order would insert one by one on SQLite.
_INSERT_MOVEMENTS = insert(_movement).returning(_movement.c.sku, _movement.c.id)


class Change(NamedTuple):
    """One SKU's line: the count (``set``) or the units received (``add``), and its ref."""

    sku: str
    quantity: int
    ref: str | None


def apply(
    session: Session,
    *,
    warehouse: str,
    mode: Literal["set", "add"],
    changes: Sequence[Change],
    actor_id: str | None = None,
) -> int:
    """Record ``changes`` in ``warehouse``: ``set`` counts (on-hand becomes the quantity, the
    difference a ``count`` movement; an equal count writes nothing) or ``add`` receipts (a
    ``receipt`` movement of the quantity, which must be positive). All or nothing: an unknown
    SKU, a repeated one or a count below reserved units raises. Returns the movements written."""
    if not changes:
        return 0
    require_warehouse(session, code=warehouse)
    skus = [change.sku for change in changes]
    if len(set(skus)) != len(skus):
        raise InvalidRequest("a SKU is listed twice", code="repeated_sku")
    missing = sorted(set(skus) - known_skus(session, skus=skus))
    if missing:
        raise InvalidRequest(f"no product with SKU {missing[0]}", code="unknown_sku")
    for change in changes:
        if not (0 <= change.quantity <= MAX_COUNT) or (mode == "add" and change.quantity == 0):
            raise InvalidRequest(f"quantity {change.quantity} of {change.sku} is out of range")
    now = utcnow()
    connection = session.connection()
    insert_many(
        connection,
        _stock,
        [
            {"sku": s, "warehouse_code": warehouse, "on_hand": 0, "reserved": 0, "updated_at": now}
            for s in skus
        ],
        ignore_conflicts=True,
    )
    # Locked in SKU order (PostgreSQL), as a transfer locks its rows: no deadlock with others.
    held = {
        row.sku: (row.on_hand, row.reserved)
        for row in connection.execute(
            select(_stock.c.sku, _stock.c.on_hand, _stock.c.reserved)
            .where(_stock.c.warehouse_code == warehouse, _stock.c.sku.in_(sorted(skus)))
            .order_by(_stock.c.sku)
            .with_for_update()
        )
    }
    reason = "count" if mode == "set" else "receipt"
    updates, movements, after = [], [], []
    for change in changes:
        on_hand, reserved = held[change.sku]
        if mode == "set":
            if change.quantity < reserved:
                raise BelowReserved(
                    f"counted {change.quantity} but {reserved} units of {change.sku} in "
                    f"{warehouse} are reserved for orders"
                )
            delta = change.quantity - on_hand
        else:
            delta = change.quantity
        if delta == 0:
            continue
        updates.append({"b_sku": change.sku, "b_wh": warehouse, "b_delta": delta, "b_at": now})
        movements.append(
            {
                "sku": change.sku,
                "warehouse_code": warehouse,
                "delta": delta,
                "reason": reason,
                "ref": change.ref,
                "actor_id": actor_id,
                "created_at": now,
            }
        )
        after.append((change, on_hand + delta, reserved, delta))
    if not movements:
        return 0
    if connection.dialect.name == "postgresql":
        # One statement for the batch: psycopg's executemany runs one UPDATE per row.
        connection.execute(
            _UPDATE_FROM_ARRAYS,
            {
                "skus": [u["b_sku"] for u in updates],
                "deltas": [u["b_delta"] for u in updates],
                "wh": warehouse,
                "at": now,
            },
        )
        ids: dict[str, int] = dict(connection.execute(_INSERT_MOVEMENTS, movements).all())
    else:
        ids = _write_sqlite(connection, warehouse, updates, movements)
    # The events carry their movement, as one ``record_movement``'s does (the reporting read
    # model copies it from them).
    moved_at = now.isoformat()
    events = [
        StockChanged(
            sku=change.sku,
            warehouse=warehouse,
            on_hand=level,
            reserved=reserved,
            reason=reason,
            ref=change.ref,
            delta=delta,
            movement_id=int(ids[change.sku]),
            moved_at=moved_at,
        )
        for change, level, reserved, delta in after
    ]
    count_on_commit(session, metrics.STOCK_MOVEMENTS.labels(reason), len(movements))
    outbox.record(session, *events)
    return len(movements)


def _write_sqlite(
    connection: Connection,
    warehouse: str,
    updates: list[dict[str, Any]],
    movements: list[dict[str, Any]],
) -> dict[str, int]:
    """The stock updates and movements of a batch on SQLite, straight through the driver (one
    executemany each): SQLAlchemy's executemany converted every parameter of every row, the
    largest share of a batch's time after the outbox (bench W8). The movements' ids: SQLite's
    executemany returns none, but the transaction holds the write lock, so the rows above the
    largest id before the insert are exactly these."""
    at = _stock.c.updated_at.type._cached_bind_processor(connection.dialect)
    stamp = at(updates[0]["b_at"]) if at else updates[0]["b_at"]
    connection.exec_driver_sql(
        "UPDATE inventory_stock SET on_hand = on_hand + ?, version = version + 1, "
        "updated_at = ? WHERE sku = ? AND warehouse_code = ?",
        [(u["b_delta"], stamp, u["b_sku"], warehouse) for u in updates],
    )
    before = connection.execute(select(func.coalesce(func.max(_movement.c.id), 0))).scalar_one()
    insert_many(connection, _movement, movements)
    rows = connection.execute(
        select(_movement.c.sku, _movement.c.id).where(_movement.c.id > before)
    ).all()
    return {sku: int(movement_id) for sku, movement_id in rows}
