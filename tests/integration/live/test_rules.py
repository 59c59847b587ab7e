"""Pure rules of live updates: resume positions and who may see which event.

(Pure, but kept beside the hub tests: this package is where the live tests live.)
"""

from __future__ import annotations

import uuid

import pytest

from storekeeper.accounts.domain import Principal, Role
from storekeeper.errors import InvalidRequest
from storekeeper.events.outbox import Snapshot
from storekeeper.events.rows import FeedRow
from storekeeper.live import domain, positions
from storekeeper.live.positions import Position

CUSTOMER = uuid.uuid4()


def test_postgresql_positions_round_trip_with_in_progress_transactions() -> None:
    position = Position(Snapshot(10, 15, (11, 13)), Snapshot(12, 20, (12,)), (14, 7))
    text = positions.encode(position, dialect="postgresql")
    assert text == "7.14.10-15-11_13.12-20-12"
    assert positions.decode(text, dialect="postgresql") == position
    start = Position.at(Snapshot(5, 5))
    encoded = positions.encode(start, dialect="postgresql")
    assert positions.decode(encoded, dialect="postgresql") == start


def test_a_sqlite_position_is_the_outbox_id() -> None:
    after_42 = Position(Snapshot(40, 40), Snapshot(45, 45), (42, 42))
    assert positions.encode(after_42, dialect="sqlite") == "42"
    assert positions.decode("42", dialect="sqlite") == Position.at(Snapshot(43, 43))


@pytest.mark.parametrize(
    ("text", "dialect"),
    [
        ("", "sqlite"),
        ("-1", "sqlite"),
        ("1.2.3-4.5-6", "sqlite"),  # a PostgreSQL position on SQLite
        ("42", "postgresql"),
        ("1.2.9-4.5-6", "postgresql"),  # xmin above xmax
        ("1.2.3-9-20.3-9", "postgresql"),  # in progress outside [xmin, xmax)
        ("1.2.3-9-x.3-9", "postgresql"),
        ("9" * 30, "sqlite"),
        ("1." * 5000, "postgresql"),
    ],
)
def test_foreign_or_malformed_positions_are_not_read(text: str, dialect: str) -> None:
    assert positions.decode(text, dialect=dialect) is None


def test_covers_follows_commits() -> None:
    earlier = Snapshot(10, 15, (11,))
    assert positions.covers(Snapshot(12, 16), earlier)  # 11 committed since
    assert positions.covers(Snapshot(10, 15, (11,)), earlier)
    assert not positions.covers(Snapshot(10, 14), earlier)  # does not reach 14
    assert not positions.covers(Snapshot(10, 16, (12,)), earlier)  # 12 still open, seen before


def _row(type_: str, **payload: object) -> FeedRow:
    return FeedRow(1, 1, type_, "x", "x", dict(payload))


STOCK_BER = domain.from_row(_row("stock.changed", warehouse="BER", on_hand=5, reserved=2))
ORDER = domain.from_row(
    _row("order.shipped", order_id="o1", customer_id=str(CUSTOMER), status="shipped")
)
ALERT_HAM = domain.from_row(_row("alert.raised", alert_id=1, warehouse="HAM"))


def test_order_events_become_one_status_change_and_stock_gets_available() -> None:
    assert ORDER is not None and ORDER.type == "order.status_changed"
    assert ORDER.data["event"] == "order.shipped"
    assert STOCK_BER is not None and STOCK_BER.data["available"] == 3
    assert domain.from_row(_row("account.registered")) is None


@pytest.mark.parametrize(
    ("who", "stock_ber", "order", "alert_ham"),
    [
        (Principal(uuid.uuid4(), Role.ADMIN), True, True, True),
        (Principal(uuid.uuid4(), Role.MANAGER), True, True, True),
        (Principal(uuid.uuid4(), Role.CLERK, warehouses=frozenset({"BER"})), True, True, False),
        (Principal(CUSTOMER, Role.CUSTOMER), False, True, False),
        (Principal(uuid.uuid4(), Role.CUSTOMER), False, False, False),
        (Principal(uuid.uuid4(), Role.DEVICE, scope="warehouse:HAM"), False, False, True),
    ],
    ids=["admin", "manager", "clerk-BER", "the-customer", "another-customer", "device-HAM"],
)
def test_who_sees_what(who: Principal, stock_ber: bool, order: bool, alert_ham: bool) -> None:
    assert STOCK_BER and ORDER and ALERT_HAM
    seen = [domain.may_see(who, e) for e in (STOCK_BER, ORDER, ALERT_HAM)]
    assert seen == [stock_ber, order, alert_ham]


def test_the_types_filter() -> None:
    assert domain.parse_types(None) == frozenset(domain.PUBLIC_TYPES)
    assert domain.parse_types(" stock.changed ,alert.raised") == {"stock.changed", "alert.raised"}
    with pytest.raises(InvalidRequest):
        domain.parse_types("order.placed")
