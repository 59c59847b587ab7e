"""The forecast's series from the daily-demand extract: stacked per series, in key order, with
empty-shelf days censored."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from storekeeper.reporting.forecast import service
from storekeeper.reporting.forecast.source import SeriesDemand

SINCE, UNTIL = date(2026, 3, 1), date(2026, 3, 4)


def _demand(sku: str, warehouse: str, sold: list[int], on_hand: list[int]) -> SeriesDemand:
    return SeriesDemand(sku, warehouse, np.array(sold), np.array(on_hand))


def test_series_are_sorted_and_a_day_with_no_sale_and_no_stock_is_censored() -> None:
    series = service.build_series(
        [
            _demand("TEA", "HAM", [0, 1, 0, 0], [0, 0, 3, -1]),
            _demand("MUG", "BER", [2, 0, 0, 1], [5, 5, 0, 0]),
            _demand("TEA", "BER", [0, 0, 0, 0], [1, 1, 1, 1]),
        ],
        since=SINCE,
        until=UNTIL,
    )
    assert series.keys == [("MUG", "BER"), ("TEA", "BER"), ("TEA", "HAM")]
    assert series.sold.tolist() == [[2, 0, 0, 1], [0, 0, 0, 0], [0, 1, 0, 0]]
    assert series.censored.tolist() == [
        [False, False, True, False],  # a sale on a day that ends empty is demand, seen
        [False, False, False, False],
        [True, False, False, True],
    ]
    assert (series.since, series.until) == (SINCE, UNTIL)


def test_a_series_of_other_days_than_the_period_is_refused() -> None:
    with pytest.raises(ValueError, match="not 4 days"):
        service.build_series(
            [_demand("TEA", "HAM", [0, 1, 0], [1, 1, 1])], since=SINCE, until=UNTIL
        )
