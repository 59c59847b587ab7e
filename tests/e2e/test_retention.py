"""Retention: what is pruned and what is kept, and no client left silently behind — a replica
offline past the horizon resyncs by itself, a live stream resuming from before it gets a reset
(docs/operations.md, "Retention")."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, update

from storekeeper import retention
from storekeeper.bootstrap import Container
from storekeeper.config import Settings
from storekeeper.db import utcnow
from storekeeper.events import outbox, restores
from storekeeper.events import retention as events_retention
from storekeeper.events.models import InboxRecord, OutboxEvent
from storekeeper.live import positions
from storekeeper.ordering.models import IdempotencyRecord
from storekeeper.sync.events import EditLost
from storekeeper.tasks.models import Job
from tests.conftest import Actor, LiveServer, start_server, stop_server
from tests.e2e.test_live import _move, _stock, anyio_backend, api, shop, sse  # noqa: F401
from tests.e2e.test_replica import Shop
from tests.e2e.test_replica import shop as replica_shop  # noqa: F401

LATER = timedelta(days=1)
"""Prune as if a day had passed with a retention of zero: everything old enough."""


def _edit_lost(n: int) -> EditLost:
    return EditLost(sku=f"SKU-{n}", mutation_id=f"m{n}", fields=("name",))


def _events(container: Container) -> list[tuple[int, str]]:
    with container.db.reading() as session:
        return [
            (r.id, r.aggregate_id)
            for r in session.execute(select(OutboxEvent.id, OutboxEvent.aggregate_id))
        ]


def test_prune_deletes_processed_old_events_keeps_the_rest_and_records_its_horizon(
    container: Container,
) -> None:
    with container.db.transaction() as session:
        outbox.record(session, *(_edit_lost(n) for n in range(5)))
    rows = _events(container)
    ids = {aggregate: event_id for event_id, aggregate in rows}
    with container.db.transaction() as session:
        published = [ids["SKU-0"], ids["SKU-1"], ids["SKU-2"], ids["SKU-4"]]  # not SKU-3
        session.execute(
            update(OutboxEvent).where(OutboxEvent.id.in_(published)).values(published_at=utcnow())
        )
        by_id = {row.id: row.event_id for row in session.scalars(select(OutboxEvent))}
        for sku, consumers in {"SKU-0": ["a", "b"], "SKU-1": ["a"], "SKU-4": ["a", "b"]}.items():
            for consumer in consumers:
                session.add(InboxRecord(consumer=consumer, event_id=by_id[ids[sku]]))

    def consumers_of(event_type: str) -> list[str]:
        return ["a", "b"] if event_type == EditLost.type else []

    before = utcnow() + LATER
    counted = events_retention.prune_outbox(
        container.db, consumers_of=consumers_of, before=before, dry_run=True
    )
    assert [(p.table, p.rows) for p in counted] == [("events_outbox", 1), ("events_inbox", 2)]
    assert len(_events(container)) == 5  # a dry run deletes nothing
    with container.db.reading() as session:
        assert events_retention.horizon(session.connection()) == 0

    done = events_retention.prune_outbox(container.db, consumers_of=consumers_of, before=before)

    assert [p.rows for p in done] == [1, 2]
    # Gone: SKU-0 (published, both consumers done). Kept: SKU-1 (b has not processed it), SKU-2
    # (nobody has), SKU-3 (not published), SKU-4 (the newest is never deleted).
    assert sorted(aggregate for _, aggregate in _events(container)) == [
        "SKU-1",
        "SKU-2",
        "SKU-3",
        "SKU-4",
    ]
    with container.db.reading() as session:
        assert session.scalar(select(func.count()).select_from(InboxRecord)) == 3
        assert events_retention.horizon(session.connection()) > 0
    # Nothing is young enough to go before its time.
    assert [
        p.rows
        for p in events_retention.prune_outbox(
            container.db, consumers_of=consumers_of, before=utcnow() - LATER
        )
    ] == [0, 0]


def _prune_until(container: Container, done: Callable[[], bool]) -> None:
    """Prune (a day later) until ``done``: the server's relay and consumers run on their own."""
    deadline = time.monotonic() + 20
    while True:
        events_retention.prune_outbox(
            container.db, consumers_of=container.consumers.of, before=utcnow() + LATER
        )
        if done():
            return
        assert time.monotonic() < deadline, "the server's events were not all processed"
        time.sleep(0.2)


def _horizon(container: Container) -> int:
    with container.db.reading() as session:
        return events_retention.horizon(session.connection())


def _pruned_past(container: Container, position: outbox.Snapshot) -> bool:
    with container.db.reading() as session:
        return events_retention.pruned_past(session.connection(), position)


def test_a_replica_offline_past_the_horizon_resyncs_by_itself_and_converges(
    replica_shop: Shop,  # noqa: F811
    container: Container,
) -> None:
    here = replica_shop
    with here.replica("till") as till:
        till.sync()
        for delta in (5, 6, 7):  # while the till is offline
            _move(here.http, here.manager, "BER", delta)
        # Everything but the newest event pruned: the till's cursor is older than the horizon.
        _prune_until(container, lambda: len(_events(container)) == 1)

        summary = till.sync()

        assert summary.resynced
        assert till.stock("MILK").on_hand == here.on_hand("MILK") == 28  # type: ignore[union-attr]
        # A replica whose cursor is newer than the horizon goes on as usual.
        _move(here.http, here.manager, "BER", 1)
        again = till.sync()
        assert not again.resynced and till.stock("MILK").on_hand == 29  # type: ignore[union-attr]
    # A fresh replica after the prune: a full pull, nothing missing.
    with here.replica("new-till", actor=here.clerk) as fresh:
        fresh.sync()
        assert fresh.stock("MILK").on_hand == 29  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_a_live_stream_resuming_from_before_the_horizon_gets_a_reset(
    live_server: LiveServer,
    api: httpx.Client,  # noqa: F811
    shop: None,  # noqa: F811
    manager: Actor,
    container: Container,
) -> None:
    async with sse(live_server, manager, types="stock.changed") as stream:
        _move(api, manager, "BER", 1)
        first = (await stream.until(_stock("BER", 11)))[-1]
    for delta in (1, 2, 3):
        _move(api, manager, "MUC", delta)
    had = positions.decode(first["id"], dialect=container.db.dialect)
    assert had is not None
    # Until rows the stream had not had are gone: only then is resuming impossible.
    _prune_until(container, lambda: _pruned_past(container, had.since))

    async with sse(live_server, manager, last_id=first["id"], types="stock.changed") as stream:
        reset = await stream.next()
        _move(api, manager, "HAM", 1)
        seen = await stream.until(_stock("HAM", 11))

    assert reset is not None and reset["type"] == "reset"
    assert "retention" in reset["data"]["reason"]
    assert {e["type"] for e in seen} == {"stock.changed"}


@pytest.mark.anyio
async def test_a_live_stream_resuming_from_before_a_restore_gets_a_reset(
    live_server: LiveServer,
    api: httpx.Client,  # noqa: F811
    shop: None,  # noqa: F811
    manager: Actor,
    container: Container,
    settings: Settings,
    tmp_path: Path,
) -> None:
    async with sse(live_server, manager, types="stock.changed") as stream:
        _move(api, manager, "BER", 1)
        first = (await stream.until(_stock("BER", 11)))[-1]
    # A restore from a backup happens with the server stopped; it starts a new generation.
    stop_server(live_server)
    with container.db.transaction() as session:
        generation = restores.start_generation(
            session.connection(), backup_started_at=None, backup_point=None
        )
    restarted = start_server(
        settings, tmp_path / "restarted.log", port=int(live_server.url.rsplit(":", 1)[1])
    )
    try:
        async with sse(restarted, manager, last_id=first["id"], types="stock.changed") as stream:
            reset = await stream.next()
            _move(api, manager, "HAM", 1)
            later = (await stream.until(_stock("HAM", 11)))[-1]
        async with sse(restarted, manager, last_id=later["id"], types="stock.changed") as stream:
            _move(api, manager, "MUC", 1)
            resumed = await stream.next()
    finally:
        stop_server(restarted)

    assert reset is not None and reset["type"] == "reset"
    assert "restored" in reset["data"]["reason"]
    assert positions.generation_of(later["id"]) == generation
    assert resumed is not None and resumed["type"] == "stock.changed"  # same generation: resumed


def test_the_retention_pass_prunes_jobs_keys_and_mail_by_their_own_windows(
    container: Container,
) -> None:
    now = utcnow()
    days = timedelta(days=1)
    with container.db.transaction() as session:
        for name, status, finished in [
            ("old-done", "done", now - 8 * days),  # past the 7 days of done jobs
            ("new-done", "done", now - 1 * days),
            ("old-failed", "failed", now - 8 * days),  # failed ones are kept 30 days
            ("ancient-failed", "failed", now - 31 * days),
        ]:
            session.add(
                Job(name=name, args={}, status=status, max_attempts=1, finished_at=finished)
            )
        for key, age in [("old-key", timedelta(hours=49)), ("new-key", timedelta(hours=47))]:
            session.add(
                IdempotencyRecord(
                    user_id=uuid.uuid4(),
                    key=key,
                    request_hash="h",
                    status_code=201,
                    response={},
                    created_at=now - age,
                )
            )
    mail = container.settings.data_dir / "outbox-mail"
    mail.mkdir(parents=True, exist_ok=True)
    for name, age in [("old.eml", 31 * days), ("new.eml", 1 * days)]:
        (mail / name).write_text("mail")
        stamp = (now - age).timestamp()
        os.utime(mail / name, (stamp, stamp))

    counted = retention.prune(
        db=container.db, settings=container.settings, consumers=container.consumers, dry_run=True
    )
    done = retention.prune(
        db=container.db, settings=container.settings, consumers=container.consumers
    )

    expected = {"jobs": 2, "ordering_idempotency": 1, "mail files": 1}
    for results in (counted, done):
        assert {r.table: r.rows for r in results if r.table in expected} == expected
    with container.db.reading() as session:
        assert sorted(session.scalars(select(Job.name))) == ["new-done", "old-failed"]
        assert list(session.scalars(select(IdempotencyRecord.key))) == ["new-key"]
    assert sorted(p.name for p in mail.iterdir()) == ["new.eml"]
