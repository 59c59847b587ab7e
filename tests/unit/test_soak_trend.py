"""The soak's judgement of "levels off" (``bench.soak.levels_off``): a pure function of the
per-minute series, so its edge cases are cheap to pin here; the soak itself is ``make soak``."""

from __future__ import annotations

import pytest

from bench.soak import levels_off


@pytest.mark.parametrize(
    ("series", "flat"),
    [
        # Rising while the retention window fills, then saw-toothing around a level.
        ([100, 900, 1500, 1700, 1550, 1720, 1600, 1690, 1580, 1710], True),
        # A leak: the same steady climb all the way (the last third about a third higher).
        ([100 * minute for minute in range(1, 11)], False),
        # Flat, then a late surge beyond the tolerance.
        ([1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1300], False),
        # Too short to show a trend: flat only if it did not grow.
        ([5, 5], True),
        ([5, 6], False),
    ],
)
def test_a_series_levels_off_when_its_last_third_stays_under_the_middle_thirds_peak(
    series: list[float], flat: bool
) -> None:
    assert levels_off(series, tolerance=0.10).flat is flat


def test_slack_absorbs_a_small_tables_wobble() -> None:
    # A handful of jobs doubling is no trend; the same relative jump in a big table would be.
    assert not levels_off([3, 3, 3, 4, 6], tolerance=0.10).flat
    assert levels_off([3, 3, 3, 4, 6], tolerance=0.10, slack=200).flat
