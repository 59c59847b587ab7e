"""Use cases of the demand forecast: turn daily demand into series, fit them on an engine, keep
the reorder points, list them, and suggest purchases where available stock is below them."""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
from sqlalchemy import delete, func, insert, select, tuple_
from sqlalchemy.orm import Session

from storekeeper.config import Settings, per_warehouse
from storekeeper.errors import InvalidRequest
from storekeeper.reporting.forecast.engines import Block, Done, Engine
from storekeeper.reporting.forecast.methods import CANDIDATES, Backtest, reorder_point
from storekeeper.reporting.forecast.models import ReorderPoint
from storekeeper.reporting.forecast.source import SeriesDemand

MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class Policy:
    """Service level and lead time, with per-warehouse overrides (the ``forecast_*`` settings)."""

    service_level: float
    lead_time_days: int
    service_levels: dict[str, float]
    lead_times: dict[str, int]

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        """The policy the settings describe."""
        return cls(
            service_level=settings.forecast_service_level,
            lead_time_days=settings.forecast_lead_time_days,
            service_levels=per_warehouse(
                settings.forecast_service_levels,
                float,
                setting="STOREKEEPER_FORECAST_SERVICE_LEVELS",
            ),
            lead_times=per_warehouse(
                settings.forecast_lead_times, int, setting="STOREKEEPER_FORECAST_LEAD_TIMES"
            ),
        )

    def of(self, warehouse: str) -> tuple[float, int]:
        """(service level, lead time in days) for ``warehouse``."""
        return (
            self.service_levels.get(warehouse, self.service_level),
            self.lead_times.get(warehouse, self.lead_time_days),
        )


@dataclass(frozen=True, slots=True)
class Series:
    """Daily demand of many (SKU, warehouse) series over the same days, in key order."""

    keys: list[tuple[str, str]]
    sold: np.ndarray
    censored: np.ndarray
    since: date
    until: date


def build_series(demand: Sequence[SeriesDemand], *, since: date, until: date) -> Series:
    """Arrays of units sold and censored days, one row per series (sorted by SKU, warehouse).

    A day with nothing sold and nothing left at its end is censored (the shelf was empty, not
    the demand). The source's per-series arrays are stacked as they are: no row per day.
    """
    days = (until - since).days + 1
    ordered = sorted(demand, key=lambda item: (item.sku, item.warehouse))
    sold = np.zeros((len(ordered), days), dtype=np.int64)
    on_hand = np.zeros((len(ordered), days), dtype=np.int64)
    for row, item in enumerate(ordered):
        if len(item.sold) != days or len(item.on_hand) != days:
            raise ValueError(f"{item.sku}@{item.warehouse}: not {days} days from {since}")
        sold[row] = item.sold
        on_hand[row] = item.on_hand
    censored = (sold == 0) & (on_hand <= 0)
    keys = [(item.sku, item.warehouse) for item in ordered]
    return Series(keys, sold, censored, since, until)


@dataclass(frozen=True, slots=True)
class Result:
    """What one series gets from a run (a row of ``reporting_reorder_point``)."""

    sku: str
    warehouse: str
    forecast_daily: float
    mae: float | None
    mase: float | None
    method: str
    safety_stock: int
    reorder_point: int
    service_level: float
    lead_time_days: int
    censored_days: int


def compute(
    series: Series,
    *,
    engine: Engine,
    policy: Policy,
    block_series: int = 500,
    backtest: Backtest = Backtest(),
    done: Done = lambda n: None,
) -> list[Result]:
    """Fit every series on ``engine`` in blocks of ``block_series`` and set its reorder point."""
    blocks = [
        Block(
            series.sold[start : start + block_series], series.censored[start : start + block_series]
        )
        for start in range(0, len(series.keys), block_series)
    ]
    fits = engine.fit_blocks(blocks, backtest, done)
    results: list[Result] = []
    row = 0
    for fit in fits:
        for index in range(len(fit.rate)):
            sku, warehouse = series.keys[row]
            row += 1
            level, lead = policy.of(warehouse)
            rate, sigma = float(fit.rate[index]), float(fit.sigma[index])
            point = reorder_point(rate=rate, sigma=sigma, service_level=level, lead_time_days=lead)
            results.append(
                Result(
                    sku=sku,
                    warehouse=warehouse,
                    forecast_daily=rate,
                    mae=_number(fit.mae[index]),
                    mase=_number(fit.mase[index]),
                    method=CANDIDATES[int(fit.method[index])].name,
                    safety_stock=point.safety_stock,
                    reorder_point=point.reorder_point,
                    service_level=level,
                    lead_time_days=lead,
                    censored_days=int(fit.censored_days[index]),
                )
            )
    return results


def _number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def replace_reorder_points(
    session: Session, *, results: Sequence[Result], computed_at: datetime
) -> None:
    """Put a run's results in place of the previous run's, in the caller's transaction."""
    session.execute(delete(ReorderPoint))
    for start in range(0, len(results), 1000):
        session.execute(
            insert(ReorderPoint),
            [
                {**_row(result), "computed_at": computed_at}
                for result in results[start : start + 1000]
            ],
        )


def _row(result: Result) -> dict[str, object]:
    return {name: getattr(result, name) for name in Result.__slots__}


@dataclass(frozen=True, slots=True)
class ReorderPointView:
    """A stored reorder point as readers see it."""

    sku: str
    warehouse: str
    reorder_point: int
    safety_stock: int
    forecast_daily: float
    mae: float | None
    mase: float | None
    method: str
    service_level: float
    lead_time_days: int
    censored_days: int
    computed_at: datetime


def list_reorder_points(
    session: Session,
    *,
    warehouses: Collection[str] | None = None,
    after: tuple[str, str] | None = None,
    limit: int = 50,
) -> tuple[list[ReorderPointView], tuple[str, str] | None]:
    """Reorder points in (warehouse, SKU) order, of ``warehouses`` when given; and the key to
    pass as ``after`` for the next page (None on the last)."""
    limit = max(1, min(limit, MAX_PAGE))
    query = select(ReorderPoint).order_by(ReorderPoint.warehouse, ReorderPoint.sku).limit(limit + 1)
    if warehouses is not None:
        query = query.where(ReorderPoint.warehouse.in_(sorted(warehouses)))
    if after is not None:
        query = query.where(tuple_(ReorderPoint.warehouse, ReorderPoint.sku) > after)
    rows = session.scalars(query).all()
    views = [_view(row) for row in rows[:limit]]
    last = (views[-1].warehouse, views[-1].sku) if len(rows) > limit else None
    return views, last


def _view(row: ReorderPoint) -> ReorderPointView:
    return ReorderPointView(
        sku=row.sku,
        warehouse=row.warehouse,
        reorder_point=row.reorder_point,
        safety_stock=row.safety_stock,
        forecast_daily=row.forecast_daily,
        mae=row.mae,
        mase=row.mase,
        method=row.method,
        service_level=row.service_level,
        lead_time_days=row.lead_time_days,
        censored_days=row.censored_days,
        computed_at=row.computed_at,
    )


def encode_cursor(key: tuple[str, str]) -> str:
    """The opaque cursor of a page that starts after ``key`` (warehouse, SKU)."""
    return base64.urlsafe_b64encode("\n".join(key).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    """The (warehouse, SKU) a cursor of :func:`encode_cursor` holds; 422 for any other."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequest("malformed cursor", code="invalid_cursor") from exc
    warehouse, sep, sku = text.partition("\n")
    if not sep or not warehouse or not sku or "\x00" in text or len(text) > 200:
        raise InvalidRequest("malformed cursor", code="invalid_cursor")
    return warehouse, sku


def last_computed_at(session: Session) -> datetime | None:
    """When the stored reorder points were computed (None before the first run)."""
    return session.scalar(select(func.max(ReorderPoint.computed_at)))
