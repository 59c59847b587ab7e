"""A room's effective range: its own, narrowed by the products that can be kept in it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from storekeeper.telemetry.domain import TempRange, effective_range

CHILLER = TempRange(2.0, 8.0)


def test_a_product_that_fits_the_room_narrows_it() -> None:
    assert effective_range(CHILLER, [TempRange(None, 4.0)]) == TempRange(2.0, 4.0)


def test_products_of_other_rooms_are_left_out() -> None:
    frozen, dry = TempRange(-25.0, -18.0), TempRange(10.0, 25.0)
    assert effective_range(CHILLER, [frozen, TempRange(1.0, 6.0), dry]) == TempRange(2.0, 6.0)


def test_an_open_room_takes_its_range_from_its_products() -> None:
    assert effective_range(TempRange(), [TempRange(0.0, 4.0)]) == TempRange(0.0, 4.0)


_ends = st.none() | st.floats(-90, 70, allow_nan=False)
_ranges = st.builds(TempRange, _ends, _ends).filter(lambda r: not r.is_empty())


@given(room=_ranges, products=st.lists(_ranges, max_size=6))
def test_the_result_is_never_empty_and_never_wider_than_the_room(
    room: TempRange, products: list[TempRange]
) -> None:
    result = effective_range(room, products)
    assert not result.is_empty()
    if room.low is not None:
        assert result.low is not None and result.low >= room.low
    if room.high is not None:
        assert result.high is not None and result.high <= room.high
