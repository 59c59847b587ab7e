"""The leader lease: one holder at a time, renewed by its holder, taken over when it lapses."""

from __future__ import annotations

import time

from storekeeper.bootstrap import Container
from storekeeper.tasks.lease import LeaderLease


def test_only_one_process_holds_the_lease(container: Container) -> None:
    first = LeaderLease(container.db, "background", ttl_s=30)
    second = LeaderLease(container.db, "background", ttl_s=30)
    assert first.hold()
    assert not second.hold()
    assert first.hold()  # renewing is fine
    first.release()
    assert second.hold()
    assert not first.hold()


def test_a_lapsed_lease_is_taken_over(container: Container) -> None:
    stalled = LeaderLease(container.db, "background", ttl_s=0.2)
    standby = LeaderLease(container.db, "background", ttl_s=30)
    assert stalled.hold()
    assert not standby.hold()
    time.sleep(0.3)
    assert standby.hold()
    assert not stalled.hold()


def test_leases_with_other_names_are_independent(container: Container) -> None:
    assert LeaderLease(container.db, "background").hold()
    assert LeaderLease(container.db, "reports").hold()
