"""The replica's hybrid logical clock: local stamps always order after what it made or saw."""

from __future__ import annotations

from storekeeper_client.hlc import Clock, parse, valid_node


def test_a_stamp_takes_the_wall_clock_when_it_is_ahead() -> None:
    assert Clock(100, 7).tick(200) == Clock(200, 0)


def test_a_wall_clock_that_lags_or_went_back_only_moves_the_counter() -> None:
    clock = Clock(500, 0)
    assert clock.tick(500) == Clock(500, 1)
    assert clock.tick(499).tick(10) == Clock(500, 2)


def test_observing_a_later_stamp_moves_the_clock_so_the_next_edit_is_after_it() -> None:
    clock = Clock(100, 0).observe("900-4-server")
    assert clock == Clock(900, 4)
    after = clock.tick(200)  # the device's clock is behind the server's
    assert (after.wall_ms, after.counter) > (900, 4)
    assert after.stamp("till-1") == "900-5-till-1"


def test_observing_an_older_none_or_unreadable_stamp_changes_nothing() -> None:
    clock = Clock(900, 4)
    assert clock.observe("800-9-server") == clock
    assert clock.observe("900-4-other") == clock
    assert clock.observe(None) == clock
    assert clock.observe("garbage") == clock


def test_stamps_parse_as_the_server_writes_them() -> None:
    assert parse("1767225600000-0-server") == (1767225600000, 0, "server")
    assert parse("1-2-a.b:c-d") == (1, 2, "a.b:c-d")
    for bad in ("", "1-2", "01-0-x", "1-0-", "1-0-_x", "a-0-x", "1-0-" + "x" * 65):
        assert parse(bad) is None, bad


def test_replica_names_follow_the_servers_node_rule_and_server_is_reserved() -> None:
    assert valid_node("3f0c6f5e-till-ber-1")
    assert not valid_node("server")
    assert not valid_node("-x")
    assert not valid_node("a b")
    assert not valid_node("x" * 65)
