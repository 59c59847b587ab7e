"""Pulls follow server commit order: a change committed late is never skipped.

The trap (PostgreSQL): outbox ids come from a sequence at INSERT time, so a transaction holding
a lower id can commit after one holding a higher id was already pulled; a feed that resumes
"after the last id" would skip it forever. These tests open two real transactions on the
database and commit them in the wrong order around a pull.
"""

from __future__ import annotations

import random
import threading
import time
from contextlib import ExitStack

import pytest
from sqlalchemy import func, select, text

from storekeeper.bootstrap import Container
from storekeeper.events.models import OutboxEvent
from storekeeper.inventory import ledger as inventory_ledger
from tests.integration.sync.support import apply, make_shop, pull_all


def _outbox_id(session: object, aggregate_id: str) -> int:
    query = select(func.max(OutboxEvent.id)).where(OutboxEvent.aggregate_id == aggregate_id)
    return int(session.scalar(query))  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.parametrize(
    "late_has_older_xid", [True, False], ids=["late-txn-older", "late-txn-younger"]
)
def test_a_transaction_committing_after_a_later_id_was_pulled_is_not_skipped(
    container: Container, late_has_older_xid: bool
) -> None:
    db = container.db
    make_shop(db, ["BER"], ["EARLY", "LATE"])
    _, cursor = pull_all(db, "warehouse:BER")

    with ExitStack() as stack:
        slow = stack.enter_context(db.transaction())
        fast_block = db.transaction()
        fast = fast_block.__enter__()
        if late_has_older_xid:
            slow.execute(text("SELECT pg_current_xact_id()"))  # slow gets its xid first
        else:
            fast.execute(text("SELECT pg_current_xact_id()"))  # fast does
        inventory_ledger.record_movement(
            slow, sku="EARLY", warehouse="BER", delta=1, reason="receipt"
        )
        inventory_ledger.record_movement(
            fast, sku="LATE", warehouse="BER", delta=2, reason="receipt"
        )
        early_id = _outbox_id(slow, "EARLY@BER")
        late_id = _outbox_id(fast, "LATE@BER")
        fast_block.__exit__(None, None, None)  # commits LATE while EARLY is still open
        assert early_id < late_id  # the trap: "id > last pulled" would pass EARLY by

        first, cursor = pull_all(db, "warehouse:BER", cursor)
        assert [(c["key"], c["data"]["on_hand"]) for c in first] == [("LATE", 2)]
    # EARLY commits now, after LATE was pulled.

    second, _ = pull_all(db, "warehouse:BER", cursor)

    assert [(c["key"], c["data"]["on_hand"]) for c in second] == [("EARLY", 1)]


def test_a_puller_racing_concurrent_writers_misses_no_change(container: Container) -> None:
    db = container.db
    skus = [f"S{i:03d}" for i in range(48)]
    make_shop(db, ["BER"], skus)
    copy: dict[tuple[str, str], object] = {}
    changes, cursor = pull_all(db, "warehouse:BER")
    apply(copy, changes)
    done = threading.Event()
    errors: list[BaseException] = []

    def write(mine: list[str], seed: int) -> None:
        rng = random.Random(seed)
        try:
            for sku in mine:
                with db.transaction() as session:
                    inventory_ledger.record_movement(
                        session, sku=sku, warehouse="BER", delta=int(sku[1:]) + 1, reason="receipt"
                    )
                    # Hold the transaction open a while, so commits overtake each other.
                    time.sleep(rng.uniform(0, 0.01))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    writers = [threading.Thread(target=write, args=(skus[i::4], i)) for i in range(4)]
    for writer in writers:
        writer.start()
    pulls = 0
    while any(w.is_alive() for w in writers) or not done.is_set():
        if not any(w.is_alive() for w in writers):
            done.set()  # one more pull after the last commit
        changes, cursor = pull_all(db, "warehouse:BER", cursor, limit=7)
        apply(copy, changes)
        pulls += 1
    for writer in writers:
        writer.join()

    assert errors == []
    assert pulls > 2
    assert (
        {sku: copy[("stock", sku)]["on_hand"] for sku in skus}
        == {  # type: ignore[index]
            sku: int(sku[1:]) + 1 for sku in skus
        }
    )
