"""Use cases of imports: submit a file, run it (check every row, then apply in batches), read
how a run is going.

A run first checks the whole file against the catalog and the warehouse (reads only) and, if
any row is bad, stops there and reports every bad row: nothing is written from a file with
errors. Then it applies the rows in batches sized to hold the write lock about
``TARGET_BATCH_S``, each batch one transaction with
its outbox events, through the catalog's and the inventory's services; ``ImportRun.processed``
moves on in the same transaction, so a run that stopped goes on where it stopped, and two
runners of one run never apply the same batch (the second one's claim finds it taken).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from storekeeper.catalog import bulk
from storekeeper.catalog import service as catalog
from storekeeper.db import Database, plan_each_time, utcnow
from storekeeper.errors import DomainError, InvalidRequest, NotFound
from storekeeper.events import outbox
from storekeeper.imports import parsing
from storekeeper.imports.models import ImportFile, ImportRun
from storekeeper.inventory import bulk as inventory_bulk
from storekeeper.inventory import ledger, levels, warehouses
from storekeeper.tasks import queue

StockMode = Literal["set", "add"]
Progress = Callable[[str, int, int], None]
"""Told (phase "checking" or "importing", rows done, rows in all) as a run goes on."""

RUN_IMPORT = "imports.run"
"""The job that runs an import submitted over HTTP or the console."""
BATCH_ROWS = 100
"""Rows of the first transaction; later ones are sized by how long the last one took."""
MIN_BATCH_ROWS = 50
MAX_BATCH_ROWS = 2000
TARGET_BATCH_S = 0.05
"""How long one batch should hold the write lock (SQLite) or its rows' locks (PostgreSQL):
orders wait about this long behind an import. Bench W8 asks for under 250 ms; on the loaded
2-core machine the slowest batches took 5-8 times their aim (the process waiting for a core, a
commit's checkpoint), so the aim is well below that (at 100 ms the longest reached 541 ms, at
50 ms 389 ms, for about the same rows per CPU second). Each transaction also costs a fixed share
(claim, commit, the run's result rewritten), so the longer a batch may be, the fewer there
are: the size follows the measured time instead of a fixed row count, which no single figure
fits both databases, every machine and a catalog of any size."""
PAUSE_SHARE = 0.25
"""On SQLite, after each batch the import waits this share of the batch's time before the
next. A writer in another process (the server placing an order) waits for the lock in
SQLite's busy handler, which sleeps between tries; an import that takes the lock again at
once wins nearly every race, and orders starve (bench W8 at 20k rows: 0.12 of their rate
alone without the pause, 0.31-0.35 with it; it costs the import at most a fifth of its rate)."""
CHECK_ROWS = 1000
"""Rows compared per read while checking: reads hold no write lock."""
LISTED = 1000
"""Rows of each kind a result lists by name (counts are always complete)."""
FINISHED = frozenset({"done", "invalid", "failed"})

_run = cast(Table, ImportRun.__table__)


class ImportNotFound(NotFound):
    """No import run has that id."""

    code = "unknown_import"


class MissingStockMode(InvalidRequest):
    """The file has a quantity column, but nobody said what it means (set or add)."""

    code = "stock_mode_required"


@dataclass(frozen=True, slots=True)
class RunView:
    """How an import run is going, and what it found or did."""

    id: int
    filename: str
    status: str
    dry_run: bool
    stock_mode: str | None
    warehouse: str | None
    total: int
    processed: int
    result: dict[str, Any]
    error: str | None
    created_at: datetime
    finished_at: datetime | None


@dataclass
class _Tally:
    """Counts and listed rows of a check or of the batches applied so far."""

    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("new", "changed", "unchanged", "invalid", "stock_changed", "stock_unchanged"), 0
        )
    )
    rows: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {"new": [], "changed": [], "stock": [], "invalid": []}
    )
    outcomes: dict[int, _Outcome] = field(default_factory=dict)
    """A check's outcome of each good row, by line: what applying it will do if nothing
    changes in between."""

    def add(self, kind: str, listed: str | None = None, **row: Any) -> None:
        self.counts[kind] += 1
        if listed is not None and len(self.rows[listed]) < LISTED:
            self.rows[listed].append(row)

    def merge(self, stored: dict[str, Any]) -> dict[str, Any]:
        """The stored result with this tally added to it."""
        counts = {k: stored.get("counts", {}).get(k, 0) + v for k, v in self.counts.items()}
        rows = {k: (stored.get("rows", {}).get(k, []) + v)[:LISTED] for k, v in self.rows.items()}
        return {**stored, "counts": counts, "rows": rows}


def check_options(
    session: Session, *, columns: Sequence[str], stock_mode: str | None, warehouse: str | None
) -> None:
    """Refuse options that do not fit the file: stock semantics are said, never guessed."""
    has_quantity = parsing.STOCK_COLUMN in columns
    if has_quantity and stock_mode is None:
        raise MissingStockMode(
            "the file has a quantity column: say what it means, stock mode 'set' (count: make "
            "on-hand equal it) or 'add' (receive it), and the warehouse"
        )
    if stock_mode is not None:
        if stock_mode not in ("set", "add"):
            raise InvalidRequest("stock mode is 'set' or 'add'", code="invalid_stock_mode")
        if not has_quantity:
            raise InvalidRequest(
                "a stock mode needs a quantity column in the file", code="quantity_required"
            )
        if not warehouse:
            raise InvalidRequest(
                "a stock mode needs the warehouse the quantities are in",
                code="warehouse_required",
            )
        warehouses.require_warehouse(session, code=warehouse)
    elif warehouse:
        raise InvalidRequest(
            "a warehouse is given but no stock mode ('set' or 'add')", code="stock_mode_required"
        )


def submit(
    session: Session,
    *,
    content: bytes,
    filename: str,
    stock_mode: StockMode | None,
    warehouse: str | None,
    dry_run: bool,
    actor_id: str | None,
    as_job: bool = False,
) -> int:
    """Record an import (or dry run) of ``content`` after checking its header and options;
    its id. Refuses a file that cannot be read or has unknown columns at once. With
    ``as_job``, the job that runs it is queued in the same transaction.

    A stock ``add`` import of a file already received (or being received) into the warehouse
    answers that earlier run, so the same file is never received twice; one that was refused
    (invalid rows, unreadable) received nothing and may be tried again."""
    columns = parsing.read_header(content)
    check_options(session, columns=columns, stock_mode=stock_mode, warehouse=warehouse)
    key = run_key(content, stock_mode=stock_mode, warehouse=warehouse)
    receipt_key = key if stock_mode == "add" and not dry_run else None
    if receipt_key is not None:
        earlier = session.execute(
            select(_run.c.id, _run.c.status).where(_run.c.receipt_key == receipt_key)
        ).first()
        if earlier is not None and earlier.status not in ("invalid", "failed"):
            return int(earlier.id)
        if earlier is not None:  # it received nothing: the file may be tried again
            session.execute(update(_run).where(_run.c.id == earlier.id).values(receipt_key=None))
    run = ImportRun(
        key=key,
        receipt_key=receipt_key,
        filename=filename[:200] or "upload",
        stock_mode=stock_mode,
        warehouse=warehouse if stock_mode else None,
        dry_run=dry_run,
        actor_id=actor_id,
        status="queued",
        total=0,
        processed=0,
        result={},
    )
    session.add(run)
    session.flush()
    session.add(ImportFile(run_id=run.id, content=content))
    if as_job:
        queue.enqueue(session, RUN_IMPORT, {"run": run.id}, key=f"import:{run.id}")
    return run.id


def unfinished(
    session: Session, *, content: bytes, stock_mode: str | None, warehouse: str | None
) -> int | None:
    """The latest import (not a dry run) of this file with these options that did not finish
    (its process was killed, say), to go on with; or None."""
    key = run_key(content, stock_mode=stock_mode, warehouse=warehouse)
    found = session.scalar(
        select(_run.c.id)
        .where(_run.c.key == key, _run.c.dry_run.is_(False), _run.c.status.not_in(FINISHED))
        .order_by(_run.c.id.desc())
        .limit(1)
    )
    return None if found is None else int(found)


def confirm(session: Session, *, run_id: int, actor_id: str | None) -> int:
    """Import the file of dry run ``run_id`` with its options, as a job; the new run's id."""
    run = session.get(ImportRun, run_id)
    if run is None:
        raise ImportNotFound(f"no import {run_id}")
    return submit(
        session,
        content=_content(session, run.id),
        filename=run.filename,
        stock_mode=cast(StockMode | None, run.stock_mode),
        warehouse=run.warehouse,
        dry_run=False,
        actor_id=actor_id,
        as_job=True,
    )


def _content(session: Session, run_id: int) -> bytes:
    found = session.get(ImportFile, run_id)
    return found.content if found is not None else b""


def run_key(content: bytes, *, stock_mode: str | None, warehouse: str | None) -> str:
    """What identifies an import: the file's SHA-256 and the options."""
    digest = hashlib.sha256(content).hexdigest()
    return f"{digest}:{stock_mode or '-'}:{warehouse or '-'}"


def get(session: Session, *, run_id: int) -> RunView:
    """How import ``run_id`` is going."""
    row = session.execute(select(_run).where(_run.c.id == run_id)).first()
    if row is None:
        raise ImportNotFound(f"no import {run_id}")
    return RunView(
        id=row.id,
        filename=row.filename,
        status=row.status,
        dry_run=row.dry_run,
        stock_mode=row.stock_mode,
        warehouse=row.warehouse,
        total=row.total,
        processed=row.processed,
        result=row.result,
        error=row.error,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


def run(db: Database, *, run_id: int, on_progress: Progress | None = None) -> RunView:
    """Check, then (unless a dry run or a row is bad) apply, import ``run_id``; from where it
    stopped if it ran before. Safe to call again at any point, and by two runners at once."""
    with db.reading() as session:
        run = session.get(ImportRun, run_id)
        if run is None:
            raise ImportNotFound(f"no import {run_id}")
        if run.status in FINISHED:
            return get(session, run_id=run_id)
        content, mode, warehouse = _content(session, run_id), run.stock_mode, run.warehouse
        dry_run, actor, ref_prefix = run.dry_run, run.actor_id, f"import:{run.key[:16]}"
    try:
        parsed = parsing.parse(content)
    except DomainError as exc:
        return _finish(db, run_id, "failed", error=exc.detail)
    total = len(parsed.rows) + len({p.line for p in parsed.problems})
    _set(db, run_id, status="checking", total=total)
    # What the outbox had before the check read anything: see ``_apply_batch``.
    mark = _outbox_mark(db)
    check = _check(db, parsed, mode=mode, warehouse=warehouse, on_progress=on_progress)
    if dry_run or check.counts["invalid"]:
        status = "done" if dry_run else "invalid"
        return _finish(db, run_id, status, result=check.merge({"dry_run": dry_run}))
    _set(db, run_id, status="importing")
    rows = parsed.rows
    start, stored = _progress(db, run_id)
    size = BATCH_ROWS
    while start < len(rows):
        end = min(start + size, len(rows))
        began = time.perf_counter()
        batch = (start, end, mode, warehouse, actor, ref_prefix)
        applied = _apply_batch(db, run_id, rows, *batch, stored=stored, check=check, mark=mark)
        mark = None
        if applied is not None:
            took = time.perf_counter() - began
            size = next_batch_size(size, end - start, took)
            start, (stored, mark) = end, applied
            if db.is_sqlite and start < len(rows):
                db.checkpoint()  # outside the transaction: its commit does not copy the log
                time.sleep(max(0.0, took * PAUSE_SHARE - (time.perf_counter() - began - took)))
        else:  # another runner took this batch: go on after what it committed
            start, stored = _progress(db, run_id)
        if on_progress is not None:
            on_progress("importing", start, len(rows))
    stored.setdefault("counts", check.counts | {"invalid": 0})
    return _finish(db, run_id, "done", result=stored)


def next_batch_size(size: int, rows: int, seconds: float) -> int:
    """The next batch's row count after ``rows`` took ``seconds``: aimed at
    ``TARGET_BATCH_S``, at most doubling (a lucky fast batch does not make a huge next one)
    and within ``MIN_BATCH_ROWS`` .. ``MAX_BATCH_ROWS``."""
    if rows < size:  # the last, short batch says little about the rate
        return size
    aimed = int(rows * TARGET_BATCH_S / max(seconds, 1e-3))
    return max(MIN_BATCH_ROWS, min(MAX_BATCH_ROWS, 2 * size, aimed))


def _check(
    db: Database,
    parsed: parsing.Parsed,
    *,
    mode: str | None,
    warehouse: str | None,
    on_progress: Progress | None,
) -> _Tally:
    """Every row compared with the catalog and the warehouse: what an import would do."""
    tally = _Tally()
    problems: list[parsing.Problem] = list(parsed.problems)
    invalid_lines = {p.line for p in parsed.problems}
    seen_codes: dict[str, int] = {}
    for start in range(0, len(parsed.rows), CHECK_ROWS):
        chunk = parsed.rows[start : start + CHECK_ROWS]
        with db.reading() as session:
            found = _compare(session, chunk, mode=mode, warehouse=warehouse, seen=seen_codes)
        for row, outcome, reasons in found:
            if reasons:
                problems.extend(parsing.Problem(row.line, row.sku, r) for r in reasons)
                invalid_lines.add(row.line)
                continue
            _count(tally, row, outcome)
            tally.outcomes[row.line] = outcome
        if on_progress is not None:
            on_progress("checking", min(start + CHECK_ROWS, len(parsed.rows)), len(parsed.rows))
    problems.sort(key=lambda p: p.line)
    tally.counts["invalid"] = len(invalid_lines) + max(
        0, parsed.problem_count - len(parsed.problems)
    )
    tally.rows["invalid"] = [
        {"line": p.line, "sku": p.sku, "reason": p.reason} for p in problems[: parsing.MAX_PROBLEMS]
    ]
    return tally


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What applying one good row does."""

    new: bool
    fields: list[str]
    on_hand: int | None  # stock before (set mode) or None
    stock_delta: int  # 0: no stock change


def _compare(
    session: Session,
    rows: Sequence[parsing.Row],
    *,
    mode: str | None,
    warehouse: str | None,
    seen: dict[str, int],
) -> list[tuple[parsing.Row, _Outcome, list[str]]]:
    """Each row's outcome against what is stored now, or the reasons it cannot be applied."""
    skus = [row.sku for row in rows]
    stored = bulk.stored(session, skus=skus)
    codes = [code for row in rows for code in row.fields.get("barcodes", ())]
    holders = bulk.barcode_holders(session, codes=codes)
    stock = _stock(session, skus=skus, mode=mode, warehouse=warehouse)
    found = []
    for row in rows:
        reasons: list[str] = []
        current = stored.get(row.sku)
        if current is None:
            missing = [f for f in ("name", "price_cents") if f not in row.fields]
            if missing:
                reasons.append(
                    f"no product with SKU {row.sku}: a new product needs {' and '.join(missing)}"
                )
        else:
            low = row.fields.get("min_temp_c", current.min_temp_c)
            high = row.fields.get("max_temp_c", current.max_temp_c)
            if low is not None and high is not None and low > high:
                reasons.append(f"min_temp_c {low} would exceed max_temp_c {high}")
        for code in row.fields.get("barcodes", ()):
            holder = holders.get(code)
            if holder is not None and holder != row.sku:
                reasons.append(f"barcode {code} belongs to product {holder}")
            elif code in seen and seen[code] != row.line:
                reasons.append(f"barcode {code} is on line {seen[code]} already")
            else:
                seen[code] = row.line
        on_hand, delta = None, 0
        if mode is not None and row.quantity is not None:
            have, reserved = stock.get(row.sku, (0, 0))
            if row.quantity < 0:
                reasons.append(
                    f"quantity {row.quantity}: "
                    + ("count 0 or more" if mode == "set" else "a receipt adds 0 or more")
                )
            elif row.quantity > ledger.MAX_COUNT:
                reasons.append(f"quantity {row.quantity} is more than {ledger.MAX_COUNT:,}")
            elif mode == "set" and row.quantity < reserved:
                reasons.append(
                    f"counted {row.quantity} but {reserved} are reserved for orders in "
                    f"{warehouse}: recount, or cancel or re-route those orders first"
                )
            elif mode == "set":
                on_hand, delta = have, row.quantity - have
            else:
                delta = row.quantity
        fields = list(row.fields) if current is None else current.changed_fields(row.fields)
        found.append((row, _Outcome(current is None, fields, on_hand, delta), reasons))
    return found


def _stock(
    session: Session, *, skus: Sequence[str], mode: str | None, warehouse: str | None
) -> dict[str, tuple[int, int]]:
    """(on-hand, reserved) of the SKUs in the warehouse, for a count (``set``): a receipt
    (``add``) adds whatever is there, so it reads nothing."""
    if mode != "set" or warehouse is None:
        return {}
    found: dict[str, tuple[int, int]] = {}
    for start in range(0, len(skus), levels.MAX_LEVELS_PAGE):
        rows, _ = levels.list_levels(
            session,
            warehouse=warehouse,
            skus=skus[start : start + levels.MAX_LEVELS_PAGE],
            limit=levels.MAX_LEVELS_PAGE,
        )
        found.update((r.sku, (r.on_hand, r.reserved)) for r in rows)
    return found


def _count(tally: _Tally, row: parsing.Row, outcome: _Outcome) -> None:
    if outcome.new:
        tally.add("new", "new", line=row.line, sku=row.sku)
    elif outcome.fields:
        tally.add("changed", "changed", line=row.line, sku=row.sku, fields=outcome.fields)
    else:
        tally.add("unchanged")
    if row.quantity is not None:
        if outcome.stock_delta:
            tally.add(
                "stock_changed",
                "stock",
                line=row.line,
                sku=row.sku,
                on_hand=outcome.on_hand,
                quantity=row.quantity,
                delta=outcome.stock_delta,
            )
        else:
            tally.add("stock_unchanged")


def _apply_batch(
    db: Database,
    run_id: int,
    rows: Sequence[parsing.Row],
    start: int,
    end: int,
    mode: str | None,
    warehouse: str | None,
    actor: str | None,
    ref_prefix: str,
    *,
    stored: dict[str, Any],
    check: _Tally,
    mark: int | None,
) -> tuple[dict[str, Any], int | None] | None:
    """Apply rows[start:end] in one transaction with the claim of the batch; the run's result
    after it and the outbox's mark (``_outbox_mark``) at its end, or None when another runner
    had claimed it already.

    ``stored`` is the run's result as of ``start`` (what the last batch this runner committed
    wrote, or read with ``start``): a claim only succeeds from where that was, so it is still
    what is stored, and is not read back and decoded again (about 2,000 listed rows, each
    batch).

    The rows are compared again in this transaction, against what is stored now: a product or
    stock changed since the check is applied as it is now, or reported if the row no longer
    fits. Unless ``mark`` is the outbox's mark still (SQLite only: every state change records
    its event, and writers take turns): then nothing has changed since the check, or since
    this runner's last batch, and the check's ``outcomes`` stand; comparing each row twice
    was a fifth of an import's time (bench W8)."""
    batch = rows[start:end]
    with db.transaction() as session:
        # The IN lists below are prepared statements on PostgreSQL: a plan cached while the
        # catalog was small (a seq scan) would be kept as it grows by 100,000 rows.
        plan_each_time(session)
        claimed = session.execute(
            update(_run)
            .where(_run.c.id == run_id, _run.c.processed == start)
            .values(processed=end)
            .returning(_run.c.id)
        ).first()
        if claimed is None:
            return None
        tally = _Tally()
        found: list[tuple[parsing.Row, _Outcome, list[str]]]
        carried = mark is not None and outbox.last_id(session) == mark
        if carried:
            found = [(row, check.outcomes[row.line], []) for row in batch]
        else:  # and from now on: the check's outcomes of later rows may be out of date too
            found = _compare(session, batch, mode=mode, warehouse=warehouse, seen={})
        new = [row for row, outcome, reasons in found if outcome.new and not reasons]
        # Just compared in this transaction: none of them exists (the primary key still says so).
        bulk.create_many(session, products=[{"sku": r.sku, **r.fields} for r in new], checked=True)
        stock: list[inventory_bulk.Change] = []
        for row, outcome, reasons in found:
            if reasons:  # changed since the check (a concurrent edit): reported, not applied
                tally.add("invalid", "invalid", line=row.line, sku=row.sku, reason=reasons[0])
                continue
            if not outcome.new and outcome.fields:
                changes = {name: row.fields[name] for name in outcome.fields}
                catalog.update(session, sku=row.sku, changes=changes)
            if outcome.stock_delta and row.quantity is not None:
                stock.append(
                    inventory_bulk.Change(row.sku, row.quantity, f"{ref_prefix}:{row.line}")
                )
            _count(tally, row, outcome)
        if stock and warehouse is not None and mode in ("set", "add"):
            inventory_bulk.apply(
                session,
                warehouse=warehouse,
                mode=cast(StockMode, mode),
                changes=stock,
                actor_id=actor,
            )
        result = tally.merge(stored)
        session.execute(update(_run).where(_run.c.id == run_id).values(result=result))
        after = outbox.last_id(session) if carried else None
    return result, after


def _outbox_mark(db: Database) -> int | None:
    """The outbox's newest id on SQLite (None on PostgreSQL, where it says nothing about what
    committed since)."""
    if not db.is_sqlite:
        return None
    with db.reading() as session:
        return outbox.last_id(session)


def _progress(db: Database, run_id: int) -> tuple[int, dict[str, Any]]:
    """Rows of the run committed so far, and its result as of them (one statement: they agree)."""
    with db.reading() as session:
        row = session.execute(
            select(_run.c.processed, _run.c.result).where(_run.c.id == run_id)
        ).one()
    return int(row.processed or 0), dict(row.result or {})


def _set(db: Database, run_id: int, **values: Any) -> None:
    with db.transaction() as session:
        session.execute(update(_run).where(_run.c.id == run_id).values(**values))


def _finish(
    db: Database,
    run_id: int,
    status: str,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> RunView:
    values: dict[str, Any] = {"status": status, "finished_at": utcnow(), "error": error}
    if result is not None:
        values["result"] = result
    _set(db, run_id, **values)
    with db.reading() as session:
        return get(session, run_id=run_id)
