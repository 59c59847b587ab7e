"""A cursor after pruning: refused exactly when the feed it continues has lost a row.

PostgreSQL transaction ids are the whole cluster's, so a cursor's snapshot lists every
transaction that was open anywhere when it was taken (a relay pass, a report, another
database's work). Pruning past such an id must not refuse the cursor unless that transaction
wrote an outbox row that was pruned: otherwise every replica resyncs whenever anything stays
open for a while (docs/sync.md, "Retention").
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Connection, create_engine, text, update
from sqlalchemy.orm import Session

from storekeeper.bootstrap import Container
from storekeeper.catalog import service as catalog_service
from storekeeper.db import utcnow
from storekeeper.events import outbox, retention
from storekeeper.events.models import OutboxEvent
from storekeeper.inventory import ledger as inventory_ledger
from storekeeper.sync import cursor as cursors
from storekeeper.sync import feed
from storekeeper.sync.events import EditLost
from tests.integration.sync.support import apply, make_shop, pull_all, server_copy

BER = "warehouse:BER"
LATER = timedelta(days=1)
"""Prune as if a day had passed with a retention of zero: everything old enough."""


@pytest.fixture
def other(container: Container) -> Iterator[Connection]:
    """A second connection to the same database, for a transaction held open across pulls."""
    if container.db.dialect != "postgresql":
        pytest.skip("only PostgreSQL snapshots list transactions in progress")
    engine = create_engine(container.settings.database_url)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def _receive(container: Container, sku: str, delta: int = 1) -> None:
    with container.db.transaction() as session:
        inventory_ledger.record_movement(
            session, sku=sku, warehouse="BER", delta=delta, reason="receipt"
        )


def _prune(container: Container) -> None:
    """Publish every event and prune all it can (a day later, no consumer required)."""
    with container.db.transaction() as session:
        session.execute(update(OutboxEvent).values(published_at=utcnow()))
    retention.prune_outbox(container.db, consumers_of=lambda _: [], before=utcnow() + LATER)


def _open_in(cursor: str) -> tuple[int, ...]:
    decoded = cursors.decode(cursor, scope=BER, db="postgresql")
    return tuple(decoded.since.xip)


def test_a_transaction_open_elsewhere_that_wrote_no_pruned_row_does_not_force_a_resync(
    container: Container, other: Connection
) -> None:
    db = container.db
    make_shop(db, ["BER"], ["MILK", "TEA"], stock=5)
    copy: dict[tuple[str, str], object] = {}
    changes, cursor = pull_all(db, BER)
    apply(copy, changes)
    # A long transaction of someone else's (a report, a relay pass) holds an id meanwhile.
    other.begin()
    held = int(other.execute(text("SELECT pg_current_xact_id()::text")).scalar_one())
    for delta in (1, 2, 3):
        _receive(container, "MILK", delta)
    changes, cursor = pull_all(db, BER, cursor)
    apply(copy, changes)
    assert held in _open_in(cursor)
    _receive(container, "TEA")  # the newest event is never pruned: prune past all the rest
    _prune(container)
    with db.reading() as session:
        assert retention.horizon(session.connection()) > held  # the old check refused here

    changes, cursor = pull_all(db, BER, cursor)
    apply(copy, changes)

    assert copy == server_copy(db, "BER")
    other.rollback()
    _receive(container, "MILK")
    apply(copy, pull_all(db, BER, cursor)[0])
    assert copy == server_copy(db, "BER")


def test_a_cursor_taken_while_a_pruned_row_was_being_written_is_refused(
    container: Container, other: Connection
) -> None:
    db = container.db
    make_shop(db, ["BER"], ["MILK", "TEA"], stock=5)
    _, cursor = pull_all(db, BER)
    # A writer of the outbox still open while the replica pulls: its row commits after the
    # cursor's snapshot, so the feed from that cursor must still bring it...
    other.begin()
    with Session(bind=other) as session:
        outbox.record(session, EditLost(sku="MILK", mutation_id="m1", fields=("name",)))
        writer = int(session.execute(text("SELECT pg_current_xact_id()::text")).scalar_one())
    _receive(container, "MILK")
    _, cursor = pull_all(db, BER, cursor)
    assert writer in _open_in(cursor)
    other.commit()
    with db.transaction() as session:
        catalog_service.update(session, sku="TEA", changes={"name": "Tea"})
    # ... unless pruning took it: then the cursor must be refused, however recent it is.
    _prune(container)

    with pytest.raises(feed.ResyncRequired):
        pull_all(db, BER, cursor)


def test_a_cursor_older_than_the_pruned_ids_kept_is_refused_if_it_had_one_open(
    container: Container, other: Connection
) -> None:
    db = container.db
    make_shop(db, ["BER"], ["MILK", "TEA"], stock=5)
    other.begin()
    other.execute(text("SELECT pg_current_xact_id()"))
    _receive(container, "MILK")
    _, cursor = pull_all(db, BER)
    _receive(container, "TEA")
    _prune(container)
    pull_all(db, BER, cursor)  # the open transaction wrote nothing: still good
    other.rollback()
    # A later pass (with nothing new to prune: the horizon stays) forgets the writers pruned
    # more than a retention window ago: a cursor from before them that had a transaction open
    # below the horizon can no longer be cleared.
    _prune(container)
    with db.reading() as session:
        assert (
            retention.horizon(session.connection())
            <= cursors.decode(cursor, scope=BER, db="postgresql").since.xmax
        )

    with pytest.raises(feed.ResyncRequired):
        pull_all(db, BER, cursor)
