"""Forecasting intermittent daily demand: SES, Croston, SBA and TSB, picked per series by backtest.

Pure numpy, no I/O. Each method is run over a whole block of series at once (a 2-D array, one
row per series, one column per day), looping over the days and updating every series' state
with element-wise operations. A row's numbers therefore depend on that row alone — never on
which other series share its block — which is what lets the local engine and a cluster (with
other block boundaries) give bit-for-bit the same results.

A *censored* day (stock ran out and nothing sold: the shelf was empty, not the demand) is a
missing observation: every method skips it, leaving its state as it was, and no backtest error
is counted on it. docs/forecast.md states the formulas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Method:
    """One candidate: a method and its smoothing constants."""

    kind: str  # "ses", "croston", "sba" or "tsb"
    alpha: float  # smoothing of the level (SES) or of the demand size (Croston, SBA, TSB)
    beta: float = 0.0  # TSB: smoothing of the probability that a day has demand

    @property
    def name(self) -> str:
        """How results name it, e.g. ``tsb(0.1,0.05)``."""
        if self.kind == "tsb":
            return f"tsb({self.alpha:g},{self.beta:g})"
        return f"{self.kind}({self.alpha:g})"


CANDIDATES: tuple[Method, ...] = (
    Method("ses", 0.1),
    Method("ses", 0.3),
    Method("croston", 0.1),
    Method("sba", 0.1),
    Method("tsb", 0.1, 0.05),
    Method("tsb", 0.2, 0.1),
)
"""What each series chooses from; on a tie (or without a backtest) the first wins."""


@dataclass(frozen=True, slots=True)
class Backtest:
    """How the rolling-origin backtest runs: the last ``holdout_days`` days are forecast from
    origins every ``step_days`` days, each origin's flat forecast scored over the next
    ``step_days`` days; the first ``warmup_days`` days never count towards sigma."""

    holdout_days: int = 56
    step_days: int = 7
    warmup_days: int = 28
    min_error_days: int = 7  # fewer one-step errors than this: sigma from Poisson (sqrt(rate))


@dataclass(frozen=True, slots=True)
class Fit:
    """What the fit gives for a block of series, one entry per row."""

    rate: Floats  # forecast units per day from the end of the history on
    mae: Floats  # backtest mean absolute error (NaN: no day to score)
    mase: Floats  # MAE scaled by the in-sample naive one-step MAE (NaN: scale 0 or none)
    sigma: Floats  # standard deviation of one-day forecast errors of the chosen method
    method: npt.NDArray[np.int64]  # index into CANDIDATES
    censored_days: npt.NDArray[np.int64]


def censored(sold: npt.ArrayLike, on_hand: npt.ArrayLike) -> Bools:
    """Days that say nothing of demand: nothing sold and nothing left at the end of the day."""
    return np.asarray(np.logical_and(np.asarray(sold) == 0, np.asarray(on_hand) <= 0))


def fit(sold: npt.ArrayLike, censored_mask: npt.ArrayLike, backtest: Backtest = Backtest()) -> Fit:
    """Fit every candidate to each row of ``sold`` (series by days), backtest, pick per row.

    ``censored_mask`` has the same shape: True where the day is not an observation.
    """
    y = np.atleast_2d(np.asarray(sold, dtype=np.float64))
    missing = np.atleast_2d(np.asarray(censored_mask, dtype=np.bool_))
    if y.shape != missing.shape:
        raise ValueError(f"sold {y.shape} and censored {missing.shape} differ in shape")
    rows, days = y.shape
    observed = ~missing
    holdout_start = max(days - backtest.holdout_days, 1) if days > 1 else days
    # One-step-ahead forecasts of every candidate for every day (made before seeing the day).
    ahead = np.empty((len(CANDIDATES), rows, days))
    final = np.empty((len(CANDIDATES), rows))
    for index, method in enumerate(CANDIDATES):
        final[index] = run_method(method, y, observed, ahead[index])
    scale = _naive_scale(y[:, :holdout_start], observed[:, :holdout_start])
    mae, mse = _backtest(y, observed, ahead, holdout_start, backtest.step_days)
    # The lowest backtest *squared* error wins: MAE is least for the median, and the median
    # day of a product that sells on fewer than half the days is 0 — an MAE-chosen method
    # would forecast next to nothing and never reorder. Squared error is least for the mean.
    # A row without any scored day keeps the first candidate.
    scored = np.where(np.isnan(mse), np.inf, mse)
    chosen = np.argmin(scored, axis=0)
    pick = np.arange(rows)
    best_mae = mae[chosen, pick]
    with np.errstate(divide="ignore", invalid="ignore"):
        mase = np.where(scale > 0, best_mae / scale, np.nan)
    rate = final[chosen, pick]
    sigma = _sigma(y, observed, ahead[chosen, pick], rate, backtest)
    return Fit(
        rate=rate,
        mae=best_mae,
        mase=mase,
        sigma=sigma,
        method=chosen.astype(np.int64),
        censored_days=missing.sum(axis=1).astype(np.int64),
    )


def run_method(method: Method, y: Floats, observed: Bools, ahead: Floats) -> Floats:
    """Run ``method`` over the days; fill ``ahead`` with each day's one-step forecast and return
    the forecast after the last day. Before a series' first observation it forecasts 0."""
    rows, days = y.shape
    alpha, beta = method.alpha, method.beta
    started = np.zeros(rows, dtype=np.bool_)  # an observed day was seen
    level = np.zeros(rows)  # SES level; Croston/SBA/TSB demand size
    interval = np.ones(rows)  # Croston/SBA: smoothed observed days between demands
    since = np.zeros(rows)  # Croston/SBA: observed days since the last demand
    chance = np.zeros(rows)  # TSB: smoothed probability of demand on a day
    sized = np.zeros(rows, dtype=np.bool_)  # Croston/SBA/TSB: a demand was seen
    bias = 1.0 - alpha / 2.0 if method.kind == "sba" else 1.0
    for t in range(days):
        x = y[:, t]
        seen = observed[:, t]
        if method.kind == "ses":
            ahead[:, t] = level
            first = seen & ~started
            level = np.where(first, x, np.where(seen, level + alpha * (x - level), level))
        elif method.kind == "tsb":
            ahead[:, t] = chance * level
            demand = seen & (x > 0)
            hit = demand.astype(np.float64)
            first = seen & ~started
            chance = np.where(first, hit, np.where(seen, chance + beta * (hit - chance), chance))
            level = np.where(
                demand & ~sized, x, np.where(demand, level + alpha * (x - level), level)
            )
            sized |= demand
        else:  # croston, sba
            ahead[:, t] = np.where(sized, bias * level / interval, 0.0)
            since = np.where(seen, since + 1.0, since)
            demand = seen & (x > 0)
            first_demand = demand & ~sized
            level = np.where(first_demand, x, np.where(demand, level + alpha * (x - level), level))
            interval = np.where(
                first_demand,
                since,
                np.where(demand, interval + alpha * (since - interval), interval),
            )
            since = np.where(demand, 0.0, since)
            sized |= demand
        started |= seen
    if method.kind == "ses":
        return level
    if method.kind == "tsb":
        return np.asarray(chance * level)
    return np.where(sized, bias * level / interval, 0.0)


def _naive_scale(y: Floats, observed: Bools) -> Floats:
    """In-sample MAE of the naive forecast (yesterday's observed demand) per row: MASE's scale.

    Only pairs of consecutive *observed* days count; NaN where a row has no such pair.
    """
    rows, days = y.shape
    total = np.zeros(rows)
    count = np.zeros(rows)
    previous = np.zeros(rows)
    has_previous = np.zeros(rows, dtype=np.bool_)
    for t in range(days):
        seen = observed[:, t]
        pair = seen & has_previous
        total = np.where(pair, total + np.abs(y[:, t] - previous), total)
        count = np.where(pair, count + 1.0, count)
        previous = np.where(seen, y[:, t], previous)
        has_previous |= seen
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, total / count, np.nan)


def _backtest(
    y: Floats, observed: Bools, ahead: Floats, start: int, step: int
) -> tuple[Floats, Floats]:
    """Rolling-origin mean absolute and mean squared error of every candidate (candidates by
    rows).

    At each origin ``o`` (``start``, ``start + step`` …) the method knows the days before ``o``
    and forecasts a flat rate — its one-step forecast for day ``o`` — for days ``o`` to
    ``o + step - 1``. With fixed smoothing constants this equals refitting at every origin.
    """
    candidates, rows, days = ahead.shape
    absolute = np.zeros((candidates, rows))
    squared = np.zeros((candidates, rows))
    count = np.zeros(rows)
    for origin in range(start, days, step):
        window = slice(origin, min(origin + step, days))
        seen = observed[:, window]
        errors = y[None, :, window] - ahead[:, :, origin, None]
        # Added day by day, not summed over the window: the order of additions is then the
        # same for every row, however the block was cut.
        for offset in range(seen.shape[1]):
            error = np.where(seen[None, :, offset], errors[:, :, offset], 0.0)
            absolute += np.abs(error)
            squared += error * error
        count += seen.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (
            np.where(count > 0, absolute / count, np.nan),
            np.where(count > 0, squared / count, np.nan),
        )


def _sigma(y: Floats, observed: Bools, ahead: Floats, rate: Floats, backtest: Backtest) -> Floats:
    """Root mean square of the chosen method's one-step errors on observed days after the
    warm-up; from too few errors, the Poisson guess sqrt(rate)."""
    rows, days = y.shape
    total = np.zeros(rows)
    count = np.zeros(rows)
    for t in range(min(backtest.warmup_days, days), days):
        seen = observed[:, t]
        error = y[:, t] - ahead[:, t]
        total = np.where(seen, total + error * error, total)
        count = np.where(seen, count + 1.0, count)
    poisson = np.sqrt(np.maximum(rate, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count >= backtest.min_error_days, np.sqrt(total / count), poisson)


@dataclass(frozen=True, slots=True)
class ReorderPoint:
    """Safety stock and reorder point of one series, in whole units."""

    safety_stock: int
    reorder_point: int


def reorder_point(
    *, rate: float, sigma: float, service_level: float, lead_time_days: int
) -> ReorderPoint:
    """``ROP = rate * L + z * sigma * sqrt(L)``, each part rounded up to whole units.

    ``z`` is the standard normal quantile of the cycle service level (0.95 → 1.645): the chance
    of not running out while a replenishment is on its way. Daily errors are taken as
    independent, so their spread over ``L`` days grows with sqrt(L).
    """
    if not 0.5 <= service_level < 1.0:
        raise ValueError(f"service level {service_level} is not in [0.5, 1)")
    if lead_time_days < 0:
        raise ValueError(f"lead time {lead_time_days} is negative")
    z = NormalDist().inv_cdf(service_level)
    safety = z * max(sigma, 0.0) * math.sqrt(lead_time_days)
    safety_units = math.ceil(round(safety, 9))
    demand = max(rate, 0.0) * lead_time_days
    return ReorderPoint(safety_units, math.ceil(round(demand + safety, 9)))
