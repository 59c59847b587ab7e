"""The stock ledger: receipts, write-offs, counts, transfers and offline changes of on-hand."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, cast

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storekeeper.db import utcnow
from storekeeper.errors import Conflict, InvalidRequest
from storekeeper.events import outbox
from storekeeper.inventory import movements
from storekeeper.inventory.domain import InsufficientStock
from storekeeper.inventory.levels import (
    MAX_LEVELS_PAGE,
    Level,
    known_skus,
    level,
    list_levels,
    require_sku,
    where_row,
)
from storekeeper.inventory.models import StockLevel
from storekeeper.inventory.warehouses import require_warehouse

# Every change of on-hand goes through ``_apply_delta``: one conditional UPDATE of the running
# total (which refuses to take available stock below zero, atomically, on SQLite and PostgreSQL
# alike) plus one ledger row, so on-hand always equals the sum of the movements. Stock rows are
# updated through SQLAlchemy Core on these hot paths: the ORM's identity map adds nothing to a
# counter.
_stock = cast(Table, StockLevel.__table__)

MANUAL_REASONS = frozenset({"receipt", "damage", "correction", "sale"})
"""Reasons a caller may give to ``POST /stock/movements``; counts and transfers have their own."""

OFFLINE_REASONS = MANUAL_REASONS | {"count"}
"""Reasons of stock changes made on offline replicas (storekeeper.sync)."""


class BelowReserved(Conflict):
    """A count below the units already reserved for orders."""

    code = "below_reserved"


MAX_COUNT = 1_000_000_000
"""The largest count a person can have made (as ``POST /stock/counts`` allows)."""

MAX_COUNT_LINES = MAX_LEVELS_PAGE
"""The most lines one count (``record_counts``) may have."""


class LineProblem(NamedTuple):
    """Why one line of a count cannot be recorded: its number (from 1), its SKU, in words."""

    line: int
    sku: str
    reason: str


class InvalidCountLines(InvalidRequest):
    """Lines of a count that cannot be recorded, every one of them (not only the first)."""

    code = "invalid_lines"

    def __init__(self, problems: Sequence[tuple[int, str, str]]) -> None:
        self.problems: list[tuple[int, str, str]] = [LineProblem(*p) for p in problems]
        super().__init__(
            "; ".join(f"line {line} ({sku or 'no SKU'}): {why}" for line, sku, why in problems)
        )


@dataclass(frozen=True, slots=True)
class OfflineDelta:
    """What became of a stock change made offline: the part applied and the part that was not."""

    level: Level
    applied: int
    shortfall: int


def _ensure_level(session: Session, sku: str, warehouse: str) -> None:
    """Create the zero stock row if missing; concurrent creators do not collide."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(
        dialect.insert(_stock)
        .values(sku=sku, warehouse_code=warehouse, on_hand=0, reserved=0, updated_at=utcnow())
        .on_conflict_do_nothing()
    )


def _require(session: Session, sku: str, warehouse: str) -> None:
    """Check the SKU and the warehouse exist, and make sure the stock row does."""
    require_sku(session, sku=sku)
    require_warehouse(session, code=warehouse)
    _ensure_level(session, sku, warehouse)


def _apply_delta(
    session: Session,
    *,
    sku: str,
    warehouse: str,
    delta: int,
    reason: str,
    ref: str | None,
    actor_id: str | None,
    replica_id: str | None = None,
    mutation_id: uuid.UUID | None = None,
    unit_cost_cents: int | None = None,
    at: datetime | None = None,
) -> Level:
    """Add ``delta`` to on-hand and to the ledger, unless available stock would drop below 0.

    The stock row must exist (``_ensure_level``); a missing row reads as zero stock.
    """
    row = session.execute(
        update(_stock)
        .where(*where_row(sku, warehouse), _stock.c.on_hand + delta - _stock.c.reserved >= 0)
        .values(
            on_hand=_stock.c.on_hand + delta,
            version=_stock.c.version + 1,
            updated_at=utcnow(),
        )
        .returning(_stock.c.on_hand, _stock.c.reserved)
    ).one_or_none()
    if row is None:
        current = level(session, sku=sku, warehouse=warehouse)
        raise InsufficientStock(sku, requested=-delta, available=current.available)
    written = movements.write(
        session,
        sku=sku,
        warehouse=warehouse,
        delta=delta,
        reason=reason,
        ref=ref,
        actor_id=actor_id,
        replica_id=replica_id,
        mutation_id=mutation_id,
        unit_cost_cents=unit_cost_cents,
        at=at,
    )
    outbox.record(
        session,
        movements.changed(
            sku=sku,
            warehouse=warehouse,
            on_hand=row.on_hand,
            reserved=row.reserved,
            reason=reason,
            ref=ref,
            movement=written,
            delta=delta,
            unit_cost_cents=unit_cost_cents,
        ),
    )
    return Level(warehouse, row.on_hand, row.reserved)


def record_movement(
    session: Session,
    *,
    sku: str,
    warehouse: str,
    delta: int,
    reason: str,
    ref: str | None = None,
    actor_id: str | None = None,
    replica_id: str | None = None,
    mutation_id: uuid.UUID | None = None,
    unit_cost_cents: int | None = None,
) -> Level:
    """Receive, write off or correct stock; refused (409) if it would oversell what is there.

    ``unit_cost_cents`` is what one received unit cost: only a receipt (a positive one) may say.
    """
    if unit_cost_cents is not None and (reason != "receipt" or delta <= 0):
        raise InvalidRequest(
            "unit_cost_cents is given with a receipt of a positive delta only",
            code="invalid_unit_cost",
        )
    if reason not in MANUAL_REASONS:
        raise InvalidRequest(
            f"reason must be one of {sorted(MANUAL_REASONS)}; counts and transfers have "
            "their own endpoints",
            code="invalid_reason",
        )
    if delta == 0:
        raise InvalidRequest("delta must not be zero", code="invalid_delta")
    _require(session, sku, warehouse)
    return _apply_delta(
        session,
        sku=sku,
        warehouse=warehouse,
        delta=delta,
        reason=reason,
        ref=ref,
        actor_id=actor_id,
        replica_id=replica_id,
        mutation_id=mutation_id,
        unit_cost_cents=unit_cost_cents,
    )


def record_offline_delta(
    session: Session,
    *,
    sku: str,
    warehouse: str,
    delta: int,
    reason: str,
    replica_id: str,
    mutation_id: uuid.UUID,
    ref: str | None = None,
    actor_id: str | None = None,
) -> OfflineDelta:
    """Apply a change an offline replica made, as far as available stock allows.

    What happened offline happened: it is not refused like ``record_movement``. An increase
    applies whole; a decrease takes at most the available units (reserved ones stay promised to
    their orders), and the rest comes back as ``shortfall`` for the caller to flag. One ledger
    movement is written either way (possibly of 0, like a count that changes nothing), naming
    the replica and the mutation.
    """
    if reason not in OFFLINE_REASONS:
        raise InvalidRequest(f"reason must be one of {sorted(OFFLINE_REASONS)}")
    _require(session, sku, warehouse)
    row = session.execute(
        select(_stock.c.on_hand, _stock.c.reserved)
        .where(*where_row(sku, warehouse))
        .with_for_update()
    ).one()
    applied = delta if delta >= 0 else -min(-delta, row.on_hand - row.reserved)
    after = _apply_delta(
        session,
        sku=sku,
        warehouse=warehouse,
        delta=applied,
        reason=reason,
        ref=ref,
        actor_id=actor_id,
        replica_id=replica_id,
        mutation_id=mutation_id,
    )
    return OfflineDelta(after, applied, applied - delta)


def record_count(
    session: Session,
    *,
    sku: str,
    warehouse: str,
    counted: int,
    ref: str | None = None,
    actor_id: str | None = None,
) -> Level:
    """Set on-hand to what was counted by recording the difference as a ``count`` movement."""
    _require(session, sku, warehouse)
    row = session.execute(
        select(_stock.c.on_hand, _stock.c.reserved)
        .where(*where_row(sku, warehouse))
        .with_for_update()
    ).one()
    if counted < row.reserved:
        raise BelowReserved(
            f"counted {counted} but {row.reserved} units of {sku} in {warehouse} are reserved "
            "for orders: cancel or re-route those orders first"
        )
    # A zero difference is still recorded: the ledger shows the count took place.
    return _apply_delta(
        session,
        sku=sku,
        warehouse=warehouse,
        delta=counted - row.on_hand,
        reason="count",
        ref=ref,
        actor_id=actor_id,
    )


def transfer(
    session: Session,
    *,
    sku: str,
    source: str,
    target: str,
    qty: int,
    actor_id: str | None = None,
) -> tuple[Level, Level]:
    """Move ``qty`` units between warehouses as a pair of ``transfer`` movements."""
    if source == target:
        raise InvalidRequest("source and target warehouse must differ", code="invalid_transfer")
    if qty <= 0:
        raise InvalidRequest("a transfer moves a positive quantity", code="invalid_quantity")
    require_sku(session, sku=sku)
    for code in sorted((source, target)):
        require_warehouse(session, code=code)
        _ensure_level(session, sku, code)
    # Lock both rows in one fixed order, so opposite transfers cannot deadlock.
    session.execute(
        select(_stock.c.sku)
        .where(_stock.c.sku == sku, _stock.c.warehouse_code.in_((source, target)))
        .order_by(_stock.c.warehouse_code)
        .with_for_update()
    ).all()
    ref = f"transfer:{uuid.uuid4()}"
    # Both rows of the pair get one time: a reader that cuts the ledger by time (reporting's
    # period snapshots) never finds one half without the other.
    now = utcnow()
    out = _apply_delta(
        session,
        sku=sku,
        warehouse=source,
        delta=-qty,
        reason="transfer",
        ref=ref,
        actor_id=actor_id,
        at=now,
    )
    into = _apply_delta(
        session,
        sku=sku,
        warehouse=target,
        delta=qty,
        reason="transfer",
        ref=ref,
        actor_id=actor_id,
        at=now,
    )
    return out, into


def count_problems(
    session: Session, *, warehouse: str, lines: Sequence[tuple[str, int | None]]
) -> list[LineProblem]:
    """Every problem of the lines (SKU, counted) of a count in ``warehouse``, all at once.

    A count of ``None`` is one that could not be read as a whole number. Raises
    ``UnknownWarehouse`` for a warehouse that does not exist; writes nothing.
    """
    require_warehouse(session, code=warehouse)
    if len(lines) > MAX_COUNT_LINES:
        raise InvalidRequest(
            f"a count has at most {MAX_COUNT_LINES} lines: count in parts (filter by SKU)",
            code="too_many_lines",
        )
    skus = {sku for sku, _ in lines if sku}
    known = known_skus(session, skus=skus)
    rows, _ = list_levels(session, warehouse=warehouse, skus=known, limit=MAX_LEVELS_PAGE)
    reserved = {row.sku: row.reserved for row in rows}
    first_line: dict[str, int] = {}
    problems: list[LineProblem] = []
    for number, (sku, counted) in enumerate(lines, start=1):
        found: list[str] = []
        if not sku:
            found.append("no SKU given")
        elif sku in first_line:
            found.append(f"{sku} is on line {first_line[sku]} already: count it once")
        elif sku not in known:
            found.append(f"no product with SKU {sku}")
        if counted is None:
            found.append("enter the count as a whole number (0 if there are none)")
        elif counted < 0:
            found.append(f"the count {counted} is negative: count 0 or more")
        elif counted > MAX_COUNT:
            found.append(f"the count {counted} is more than {MAX_COUNT:,}")
        elif not found and counted < reserved.get(sku, 0):
            found.append(
                f"counted {counted} but {reserved[sku]} are reserved for orders: recount, or "
                "cancel or re-route those orders first"
            )
        first_line.setdefault(sku, number)
        problems.extend(LineProblem(number, sku, why) for why in found)
    return problems


def record_counts(
    session: Session,
    *,
    warehouse: str,
    lines: Sequence[tuple[str, int]],
    ref: str | None = None,
    actor_id: str | None = None,
) -> list[tuple[str, Level]]:
    """Record a whole count (a stocktake) in ``warehouse``: all lines or none.

    Every line is checked first and ``InvalidCountLines`` names every problem (unknown or
    repeated SKU, negative count, count below reserved); then each line is a ``record_count``
    with the same ``ref``. Returns (SKU, level after) in line order.
    """
    if not lines:
        raise InvalidRequest("a count needs at least one line", code="no_lines")
    problems = count_problems(session, warehouse=warehouse, lines=lines)
    if problems:
        raise InvalidCountLines(problems)
    return [
        (
            sku,
            record_count(
                session, sku=sku, warehouse=warehouse, counted=counted, ref=ref, actor_id=actor_id
            ),
        )
        for sku, counted in lines
    ]
