"""The forecasting methods, the backtest's choice and the reorder point formula, as properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storekeeper.reporting.forecast import methods
from storekeeper.reporting.forecast.methods import CANDIDATES, censored, fit, reorder_point

demand_days = st.lists(st.integers(min_value=0, max_value=20), min_size=1, max_size=120)


@settings(max_examples=60, deadline=None)
@given(level=st.integers(min_value=1, max_value=500), days=st.integers(min_value=30, max_value=200))
def test_a_constant_demand_series_forecasts_that_constant(level: int, days: int) -> None:
    result = fit(np.full((1, days), level), np.zeros((1, days), dtype=bool))
    assert result.rate[0] == pytest.approx(level, rel=1e-9)
    assert result.mae[0] == pytest.approx(0.0, abs=1e-9 * level)


@settings(max_examples=60, deadline=None)
@given(
    sold=demand_days,
    gaps=st.lists(st.integers(min_value=0, max_value=119), max_size=40),
)
def test_censored_days_are_skipped_not_counted_as_zero_demand(
    sold: list[int], gaps: list[int]
) -> None:
    """Every method run with stocked-out days inserted gives what it gives without those days."""
    with_gaps: list[int] = []
    missing: list[bool] = []
    for day, units in enumerate(sold):
        for _ in range(gaps.count(day)):
            with_gaps.append(0)
            missing.append(True)
        with_gaps.append(units)
        missing.append(False)
    plain = np.array([sold], dtype=np.float64)
    gapped = np.array([with_gaps], dtype=np.float64)
    for method in CANDIDATES:
        ahead_plain = np.empty_like(plain)
        ahead_gapped = np.empty_like(gapped)
        expected = methods.run_method(method, plain, np.ones_like(plain, bool), ahead_plain)
        got = methods.run_method(method, gapped, ~np.array([missing]), ahead_gapped)
        assert got[0] == pytest.approx(expected[0], rel=1e-12, abs=1e-12), method.name


def test_stock_outs_do_not_drag_the_rate_down() -> None:
    """Two units a day, sold out every other week: the rate stays 2, not 1."""
    days = 140
    sold = np.array([[2 if (day // 7) % 2 == 0 else 0 for day in range(days)]])
    on_hand = np.where(sold > 0, 5, 0)
    honest = fit(sold, censored(sold, on_hand))
    naive = fit(sold, np.zeros_like(sold, dtype=bool))
    assert honest.rate[0] == pytest.approx(2.0)
    assert honest.censored_days[0] == days // 2
    assert naive.rate[0] < 1.9


def test_a_day_with_a_sale_is_never_censored_even_if_it_ended_empty() -> None:
    assert censored([3, 0, 0], [0, 0, 2]).tolist() == [False, True, False]


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.lists(st.integers(min_value=0, max_value=9), min_size=40, max_size=40),
        min_size=2,
        max_size=8,
    ),
    cut=st.integers(min_value=1, max_value=7),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_a_series_fits_the_same_whichever_block_it_is_in(
    rows: list[list[int]], cut: int, seed: int
) -> None:
    """What lets a cluster cut the series into other blocks and still agree bit for bit."""
    sold = np.array(rows)
    missing = np.random.default_rng(seed).random(sold.shape) < 0.2
    whole = fit(sold, missing)
    cut = min(cut, len(rows) - 1)
    parts = [fit(sold[:cut], missing[:cut]), fit(sold[cut:], missing[cut:])]
    for name in ("rate", "mae", "mase", "sigma", "method", "censored_days"):
        joined = np.concatenate([getattr(part, name) for part in parts])
        assert np.array_equal(getattr(whole, name), joined, equal_nan=True), name


@settings(max_examples=100, deadline=None)
@given(
    rate=st.floats(min_value=0, max_value=1000),
    sigma=st.floats(min_value=0, max_value=1000),
    levels=st.lists(st.floats(min_value=0.5, max_value=0.999), min_size=2, max_size=2),
    leads=st.lists(st.integers(min_value=0, max_value=120), min_size=2, max_size=2),
)
def test_the_reorder_point_grows_with_service_level_and_lead_time(
    rate: float, sigma: float, levels: list[float], leads: list[int]
) -> None:
    low_level, high_level = sorted(levels)
    short, long = sorted(leads)

    def rop(level: float, lead: int) -> int:
        return reorder_point(
            rate=rate, sigma=sigma, service_level=level, lead_time_days=lead
        ).reorder_point

    assert rop(low_level, short) <= rop(high_level, short)
    assert rop(low_level, short) <= rop(low_level, long)
    point = reorder_point(rate=rate, sigma=sigma, service_level=high_level, lead_time_days=long)
    assert point.reorder_point >= math.ceil(round(rate * long, 9))
    assert point.safety_stock <= point.reorder_point


def test_the_reorder_point_formula_on_numbers() -> None:
    """0.5 a day over 7 days is 3.5; z(0.95) = 1.645 times sigma 1 times sqrt(7) = 4.35."""
    point = reorder_point(rate=0.5, sigma=1.0, service_level=0.95, lead_time_days=7)
    assert (point.safety_stock, point.reorder_point) == (5, 8)


@pytest.mark.parametrize("level", [0.49, 1.0, 1.5])
def test_a_service_level_outside_half_to_one_is_refused(level: float) -> None:
    with pytest.raises(ValueError, match="service level"):
        reorder_point(rate=1, sigma=1, service_level=level, lead_time_days=7)


def test_intermittent_demand_chooses_an_intermittent_method_and_scores_it() -> None:
    """A sale of 4 on one day in ten: Croston-type methods win the backtest on most series,
    and the rate is the mean (0.4), not the median day (0), as an MAE choice would give."""
    rng = np.random.default_rng(7)
    sold = np.where(rng.random((50, 365)) < 0.1, 4, 0)
    result = fit(sold, np.zeros_like(sold, dtype=bool))
    intermittent = [CANDIDATES[i].kind in ("croston", "sba", "tsb") for i in result.method]
    assert sum(intermittent) >= 0.8 * len(intermittent)
    assert 0.3 < float(np.median(result.rate)) < 0.5  # 4 x 0.1 = 0.4 a day
    assert np.all(np.isfinite(result.mase)) and np.all(result.mae > 0)


def test_a_series_with_no_observed_day_forecasts_zero_without_a_score() -> None:
    result = fit(np.zeros((1, 30)), np.ones((1, 30), dtype=bool))
    assert result.rate[0] == 0
    assert math.isnan(result.mae[0]) and math.isnan(result.mase[0])
    assert result.method[0] == 0
