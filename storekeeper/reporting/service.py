"""The reports: SQL over reporting's own read models, on SQLite and PostgreSQL alike.

Each report names its technique (docs/reports.md): sales aggregate with GROUP BY and top-N,
dead stock is an anti-join (NOT EXISTS), low stock a HAVING, stock history a window function,
ABC a running total over a window; valuation replays moving average cost (``domain``) from the
latest period snapshot. Periods are inclusive UTC dates ``since``..``until``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    Date,
    Integer,
    Select,
    Subquery,
    Table,
    and_,
    case,
    exists,
    func,
    literal,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression

from storekeeper.catalog import service as catalog_service
from storekeeper.errors import InvalidRequest
from storekeeper.inventory import warehouses as inventory_warehouses
from storekeeper.reporting import balances
from storekeeper.reporting.balances import midnight, no_cyclic_gc
from storekeeper.reporting.forecast.models import ReorderPoint
from storekeeper.reporting.models import LedgerRow, LevelRow, SalesMonthRow

_ledger = cast(Table, LedgerRow.__table__)
_level = cast(Table, LevelRow.__table__)
_sales_month = cast(Table, SalesMonthRow.__table__)
_point = cast(Table, ReorderPoint.__table__)

ABC_A_SHARE = 80
"""Percent of sales value the A items make up (top first); B the next 15, C the rest."""
ABC_B_SHARE = 95


@dataclass(frozen=True, slots=True)
class SalesRow:
    """Units and value sold of one product (or warehouse), in one currency."""

    key: str
    name: str
    currency: str
    units: int
    value_cents: int


@dataclass(frozen=True, slots=True)
class DeadStockRow:
    """A series with stock and no sale since the cut-off (``last_sold_at`` None: never sold)."""

    sku: str
    warehouse: str
    on_hand: int
    last_sold_at: datetime | None


@dataclass(frozen=True, slots=True)
class LowStockRow:
    """A series whose available units are below its reorder point."""

    sku: str
    warehouse: str
    on_hand: int
    reserved: int
    available: int
    reorder_point: int


@dataclass(frozen=True, slots=True)
class AbcRow:
    """A product's sales value, its share and running share (percent) and its class."""

    sku: str
    currency: str
    units: int
    value_cents: int
    share_pct: float
    cumulative_pct: float
    abc_class: str


DEFAULT_DAYS = 30
"""A report's period when none is given: the last 30 days, today included."""


def today() -> date:
    """Today in UTC, the reports' time zone."""
    return datetime.now(UTC).date()


def period(since: date | None, until: date | None) -> tuple[date, date]:
    """The period asked for, its missing ends filled in: until today, since 30 days."""
    until = until or today()
    return since or until - timedelta(days=DEFAULT_DAYS - 1), until


def window(since: date, until: date) -> tuple[datetime, datetime]:
    if since > until:
        raise InvalidRequest("since must not be after until", code="invalid_period")
    return midnight(since), midnight(until + timedelta(days=1))


def _sales_per_series(session: Session, start: datetime, end: datetime) -> Subquery:
    """Rows (sku, warehouse, currency, units, value) whose sums by product or warehouse are
    the sales in ``start``..``end``: the whole closed months inside the period summed per
    series from ``reporting_sales_month`` (walking its key, series first: no sort), and the
    sales of the days before and after them (:func:`_sales_rows`).

    A year is then about 12 rows per series plus a month or two of sale rows, instead of
    every sale of the year (bench W9: ABC and the two-year sales report)."""
    months = balances.closed_months_within(session, start=start, end=end)
    if months is None:
        return _sales_rows(session, start, end).subquery("sales")
    first, after = months
    # SQLite would take the index on ends_on for the bounds and then sort for the GROUP BY;
    # the series-first key, walked whole, needs no sort (see _sales_rows for the unary +).
    ends_on = _sales_month.c.ends_on
    if session.get_bind().dialect.name == "sqlite":
        ends_on = _unindexed(ends_on)
    parts: list[Select[Any]] = [
        select(
            _sales_month.c.sku,
            _sales_month.c.warehouse,
            _sales_month.c.currency,
            func.sum(_sales_month.c.units).label("units"),
            func.sum(_sales_month.c.value_cents).label("value"),
        )
        .where(ends_on > first.date(), ends_on <= after.date())
        .group_by(_sales_month.c.sku, _sales_month.c.warehouse, _sales_month.c.currency)
    ]
    parts.extend(
        _sales_rows(session, lo, hi) for lo, hi in ((start, first), (after, end)) if lo < hi
    )
    return union_all(*parts).subquery("sales")


def _sales_rows(session: Session, start: datetime, end: datetime) -> Select[Any]:
    """Rows (sku, warehouse, currency, units, value) of the sales in ``start``..``end`` whose
    sums by product or warehouse are their sales: the sale rows themselves, or, on SQLite for
    a long period, their sums per series.

    PostgreSQL sums the sale rows of any period with a hash aggregate (in parallel) over the
    index on (reason, moved_at); so does SQLite for a short period. SQLite has no hash
    aggregate: for a long period (more than a quarter of the time the sales span, which only
    happens while its months are not closed yet) it would sort every sale row of the period.
    There the rows are summed per (SKU, warehouse, currency) first, walking
    ``ix_reporting_movement_sales``, which holds the sales in that order with every column
    summed: one pass over the index and no sort, then a few thousand sums for the report's
    GROUP BY. The unary ``+`` on ``moved_at`` keeps SQLite's planner off the time index for it
    (the documented way to disqualify an index for a term)."""
    sales = _ledger.c.reason == "sale"
    if session.get_bind().dialect.name != "sqlite" or not _long_period(session, start, end):
        return select(
            _ledger.c.sku,
            _ledger.c.warehouse,
            func.coalesce(_ledger.c.currency, "").label("currency"),
            (-_ledger.c.delta).label("units"),
            _ledger.c.sale_value_cents.label("value"),
        ).where(sales, _ledger.c.moved_at >= start, _ledger.c.moved_at < end)
    moved_at = _unindexed(_ledger.c.moved_at)
    return (
        select(
            _ledger.c.sku,
            _ledger.c.warehouse,
            _ledger.c.currency,
            func.sum(-_ledger.c.delta).label("units"),
            func.sum(_ledger.c.sale_value_cents).label("value"),
        )
        .where(sales, moved_at >= start, moved_at < end)
        .group_by(_ledger.c.sku, _ledger.c.warehouse, _ledger.c.currency)
    )


def _unindexed(column: Any) -> Any:
    """``+column``: SQLite's documented way to keep its planner off an index for a term."""
    return UnaryExpression(column, operator=operators.custom_op("+"), type_=column.type)


def _long_period(session: Session, start: datetime, end: datetime) -> bool:
    """Whether ``start``..``end`` covers more than a quarter of the time the sales span."""
    # Two queries: SQLite answers a lone min() or max() from the end of an index, but reads
    # every entry for both in one.
    sales = _ledger.c.reason == "sale"
    first = session.scalar(select(func.min(_ledger.c.moved_at)).where(sales))
    last = session.scalar(select(func.max(_ledger.c.moved_at)).where(sales))
    first, last = _aware(first), _aware(last)
    if first is None or last is None or last <= first:
        return False
    covered = min(end, last) - max(start, first)
    return covered * 4 > last - first


def sales(
    session: Session,
    *,
    since: date,
    until: date,
    by: Literal["product", "warehouse"] = "product",
    top: int = 20,
) -> list[SalesRow]:
    """The ``top`` products (or warehouses) by sales value over the period, per currency."""
    start, end = window(since, until)
    per = _sales_per_series(session, start, end)
    key = per.c.sku if by == "product" else per.c.warehouse
    currency = func.coalesce(per.c.currency, "")
    value = func.coalesce(func.sum(per.c.value), 0)
    units = func.sum(per.c.units)
    query = (
        select(key.label("key"), currency.label("currency"), units, value)
        .group_by(key, currency)
        .order_by(value.desc(), units.desc(), key, currency)
        .limit(top)
    )
    rows = session.execute(query).all()
    keys = {row[0] for row in rows}
    if by == "product":
        names = catalog_service.names(session, skus=keys)
    else:
        names = {w.code: w.name for w in inventory_warehouses.list_warehouses(session)}
    return [SalesRow(k, names.get(k, ""), cur, int(u), int(v)) for k, cur, u, v in rows]


def dead_stock(
    session: Session, *, days: int | None = None, now: datetime | None = None
) -> list[DeadStockRow]:
    """Series with units on hand and no sale in the last ``days`` days (or ever, when None)."""
    now = now or datetime.now(UTC)
    rows = balances.balance_rows(session, until=now)
    balance = (
        select(rows.c.sku, rows.c.warehouse, func.sum(rows.c.units).label("on_hand"))
        .group_by(rows.c.sku, rows.c.warehouse)
        .having(func.sum(rows.c.units) > 0)
        .subquery("balance")
    )
    same_series = and_(
        _ledger.c.sku == balance.c.sku,
        _ledger.c.warehouse == balance.c.warehouse,
        _ledger.c.reason == "sale",
        _ledger.c.moved_at < now,
    )
    recent = same_series
    if days is not None:
        recent = and_(same_series, _ledger.c.moved_at >= now - timedelta(days=days))
    last_sold = select(func.max(_ledger.c.moved_at)).where(same_series).scalar_subquery()
    query = (
        select(balance.c.sku, balance.c.warehouse, balance.c.on_hand, last_sold.label("last"))
        .where(~exists().where(recent))  # the anti-join
        .order_by(balance.c.on_hand.desc(), balance.c.sku, balance.c.warehouse)
    )
    return [
        DeadStockRow(sku, wh, int(units), _aware(last))
        for sku, wh, units, last in session.execute(query)
    ]


def low_stock(
    session: Session, *, threshold: int, warehouse: str | None = None
) -> list[LowStockRow]:
    """Series whose available units (on hand from the ledger less reserved) are below the
    reorder point — the demand forecast's for the series, else ``threshold`` — lowest first."""
    rows = balances.balance_rows(session, until=datetime.now(UTC), every_series=True)
    on_hand = func.sum(rows.c.units)
    reserved = func.coalesce(_level.c.reserved, 0)
    # The forecast's reorder point of the series where it has one, else the flat threshold.
    reorder_point = func.coalesce(_point.c.reorder_point, literal(threshold))
    query = (
        select(rows.c.sku, rows.c.warehouse, on_hand, reserved, reorder_point)
        .select_from(rows)
        .outerjoin(_level, and_(_level.c.sku == rows.c.sku, _level.c.warehouse == rows.c.warehouse))
        .outerjoin(_point, and_(_point.c.sku == rows.c.sku, _point.c.warehouse == rows.c.warehouse))
        .group_by(rows.c.sku, rows.c.warehouse, _level.c.reserved, _point.c.reorder_point)
        .having(on_hand - reserved < reorder_point)
        .order_by(on_hand - reserved, rows.c.sku, rows.c.warehouse)
    )
    if warehouse is not None:
        query = query.where(rows.c.warehouse == warehouse)
    return [
        LowStockRow(sku, wh, int(units), int(res), int(units) - int(res), int(point))
        for sku, wh, units, res, point in session.execute(query)
    ]


def abc(session: Session, *, since: date, until: date) -> list[AbcRow]:
    """Products ranked by sales value over the period, per currency, classed A/B/C: A while
    the value ranked above a product is under 80% of the total, B under 95%, C the rest."""
    start, end = window(since, until)
    series = _sales_per_series(session, start, end)
    currency = func.coalesce(series.c.currency, "")
    value = func.coalesce(func.sum(series.c.value), 0)
    per = (
        select(
            series.c.sku,
            currency.label("currency"),
            func.sum(series.c.units).label("units"),
            value.label("value"),
        )
        .group_by(series.c.sku, currency)
        .having(value > 0)
        .subquery("per")
    )
    rank = (per.c.value.desc(), per.c.sku)
    ranked = select(
        per,
        func.coalesce(
            func.sum(per.c.value).over(partition_by=per.c.currency, order_by=rank, rows=(None, -1)),
            0,
        ).label("before"),
        func.sum(per.c.value).over(partition_by=per.c.currency).label("total"),
    ).subquery("ranked")
    klass = case(
        (ranked.c.before * 100 < ranked.c.total * ABC_A_SHARE, "A"),
        (ranked.c.before * 100 < ranked.c.total * ABC_B_SHARE, "B"),
        else_="C",
    )
    query = select(
        ranked.c.sku,
        ranked.c.currency,
        ranked.c.units,
        ranked.c.value,
        ranked.c.before,
        ranked.c.total,
        klass.label("abc_class"),
    ).order_by(ranked.c.currency, ranked.c.value.desc(), ranked.c.sku)
    result = []
    with no_cyclic_gc():
        for sku, cur, units, sold, before, total, klass_ in session.connection().execute(query):
            cents, whole = int(sold), int(total)
            result.append(
                AbcRow(
                    sku,
                    cur,
                    int(units),
                    cents,
                    round(100 * cents / whole, 2),
                    round(100 * (int(before) + cents) / whole, 2),
                    klass_,
                )
            )
    return result


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return cast(datetime, moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def _day_number(session: Session, since: date) -> Any:
    """Days from ``since`` to a movement's day (UTC), counted by the database: the rows come
    back as small ints, with no date made (nor parsed, on SQLite) per row."""
    if session.get_bind().dialect.name == "postgresql":
        moved_on = func.date(func.timezone("UTC", _ledger.c.moved_at))
        return type_coerce(moved_on - literal(since, Date), Integer)
    days = func.julianday(func.date(_ledger.c.moved_at)) - func.julianday(since.isoformat())
    return sql_cast(days, Integer)


@dataclass(frozen=True, slots=True)
class SeriesDemand:
    """One series' daily demand over the extract's days (``since``..``until``, index 0 is
    ``since``): arrays rather than a row per day, so 90 days of 15,000 series are 15,000
    objects, not 1.35 million tuples (bench W9)."""

    sku: str
    warehouse: str
    sold: npt.NDArray[np.int64]
    """Units sold each day."""
    on_hand: npt.NDArray[np.int64]
    """Units on hand at the end of each day."""


def daily_demand(session: Session, *, since: date, until: date) -> list[SeriesDemand]:
    """Per series, units sold and on-hand at the end of each day ``since``..``until``
    (inclusive, UTC), for every series that had a movement in the period or units on hand at
    its start; sorted by series.

    Units sold are the units of ``sale`` movements (a returned sale, a positive one, counts
    against its day); on-hand is what was on hand, whatever the reason of the change. A day at
    zero on-hand with no sale is a stock-out, not a day of no demand: the forecast tells them
    apart with the last figure.
    """
    start, end = window(since, until)
    with no_cyclic_gc():
        return _daily_demand(session, since=since, until=until, start=start, end=end)


_KEY_SEPARATOR = "\x1f"
"""Between SKU and warehouse in the one key column of the daily-demand query (a control
character no code has): one string per movement rather than two and a tuple."""


def _daily_demand(
    session: Session, *, since: date, until: date, start: datetime, end: datetime
) -> list[SeriesDemand]:
    opening = balances.on_hand(session, until=start)
    # The period's movements one by one, not grouped by series and day: nearly every
    # (series, day) has a single movement, so a GROUP BY would cost the database more than it
    # saves (twice the scan on either backend); numpy sums them into their cells instead.
    query = select(
        _ledger.c.sku + _KEY_SEPARATOR + _ledger.c.warehouse,
        _day_number(session, since),
        case((_ledger.c.reason == "sale", -_ledger.c.delta), else_=0),
        _ledger.c.delta,
    ).where(_ledger.c.moved_at >= start, _ledger.c.moved_at < end)
    rows = session.connection().execute(query).all()
    joined, days, units, deltas = zip(*rows, strict=True) if rows else ((),) * 4
    moved = {key.rpartition(_KEY_SEPARATOR)[::2]: key for key in set(joined)}
    keys = sorted(opening.keys() | moved.keys())
    position = {moved.get(key, key): n for n, key in enumerate(keys)}
    count = (until - since).days + 1
    # Series x day matrices: each movement adds into its cell (flat index series * days + day),
    # the running on-hand is a cumulative sum along the days; Python loops over the rows and
    # the series, never over series times days.
    cells = np.fromiter(map(position.__getitem__, joined), np.int64, len(rows)) * count
    cells += np.fromiter(days, np.int64, len(rows))
    sold_by_day = np.zeros((len(keys), count), dtype=np.int64)
    net_by_day = np.zeros((len(keys), count), dtype=np.int64)
    np.add.at(sold_by_day.reshape(-1), cells, np.fromiter(units, np.int64, len(rows)))
    np.add.at(net_by_day.reshape(-1), cells, np.fromiter(deltas, np.int64, len(rows)))
    levels = np.fromiter((opening.get(key, 0) for key in keys), np.int64, len(keys))
    on_hand = np.cumsum(net_by_day, axis=1, out=net_by_day)
    on_hand += levels[:, np.newaxis]
    sold_by_day.flags.writeable = on_hand.flags.writeable = False  # shared by the items
    return [
        SeriesDemand(sku, wh, units_row, level_row)
        for (sku, wh), units_row, level_row in zip(keys, sold_by_day, on_hand, strict=True)
    ]
