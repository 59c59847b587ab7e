"""The embedded-mode outbox relay: in order, at least once, idempotent per consumer."""

from __future__ import annotations

import random
import threading

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storekeeper.bootstrap import Container
from storekeeper.catalog import service as catalog_service
from storekeeper.events.models import OutboxEvent
from storekeeper.events.relay import (
    Consumers,
    Envelope,
    deliver,
    local_delivery,
    relay_once,
    status,
)


def _products(container: Container, *skus: str) -> None:
    for sku in skus:
        with container.db.transaction() as session:
            catalog_service.create(
                session, data={"sku": sku, "name": sku, "price_cents": 1, "currency": "EUR"}
            )


def _count_on(sku: str) -> object:
    """A consumer whose effect is a real write: it counts deliveries on a product's attributes."""

    def handler(session: Session, envelope: Envelope) -> None:
        product = catalog_service.get_or_raise(session, sku=sku)
        seen = list(product.attributes.get("seen", []))
        product.attributes = {"seen": [*seen, envelope.aggregate_id]}

    return handler


def _relay(container: Container, consumers: Consumers) -> int:
    return relay_once(container.db, local_delivery(container.db, consumers))


def _seen(container: Container, sku: str) -> list[str]:
    with container.db.reading() as session:
        return list(catalog_service.get_or_raise(session, sku=sku).attributes.get("seen", []))


def test_relay_delivers_every_event_once_in_outbox_order(container: Container) -> None:
    _products(container, "LOG")
    consumers = Consumers()
    consumers.subscribe("audit", "product.changed", _count_on("LOG"))  # type: ignore[arg-type]
    _products(container, "A", "B", "C")

    delivered = _relay(container, consumers)

    # LOG's own creation is an event too; its handler sees it and the three after it.
    assert delivered == 4
    assert _seen(container, "LOG") == ["LOG", "A", "B", "C"]
    assert status(container.db).pending == 0
    assert _relay(container, consumers) == 0


def test_redelivered_event_does_not_repeat_a_consumers_effect(container: Container) -> None:
    _products(container, "LOG", "A")
    consumers = Consumers()
    consumers.subscribe("audit", "product.changed", _count_on("LOG"))  # type: ignore[arg-type]
    _relay(container, consumers)
    # As if the relay died after the consumers committed but before marking the events sent.
    with container.db.transaction() as session:
        session.execute(update(OutboxEvent).values(published_at=None))

    assert _relay(container, consumers) == 2
    assert _seen(container, "LOG") == ["LOG", "A"]


def test_status_reports_pending_events_and_their_age(container: Container) -> None:
    _products(container, "A", "B")

    before = status(container.db)
    _relay(container, Consumers())
    after = status(container.db)

    assert (before.pending, before.published) == (2, 0)
    assert before.oldest_pending_at is not None and before.lag_s >= 0
    assert (after.pending, after.published, after.lag_s) == (0, 2, 0.0)
    assert after.last_published_at is not None


def _positions_log(container: Container) -> Consumers:
    """A consumer that appends each event's position to ``LOG-<sku>``: one log per aggregate."""

    def handler(session: Session, envelope: Envelope) -> None:
        log = catalog_service.get_or_raise(session, sku=f"LOG-{envelope.aggregate_id}")
        log.attributes = {"seen": [*log.attributes.get("seen", []), envelope.position]}

    consumers = Consumers()
    consumers.subscribe("audit", "product.changed", handler)
    return consumers


def _outbox_envelopes(container: Container, *skus: str) -> list[Envelope]:
    with container.db.reading() as session:
        rows = session.connection().execute(
            select(OutboxEvent.__table__).where(OutboxEvent.aggregate_id.in_(skus))
        )
        return [Envelope.from_row(row) for row in rows.mappings()]


def _changes(container: Container, sku: str, times: int) -> None:
    for n in range(times):
        with container.db.transaction() as session:
            catalog_service.update(session, sku=sku, changes={"name": f"{sku} v{n}"})


def test_an_event_that_overtakes_an_earlier_one_applies_the_earlier_one_first(
    container: Container,
) -> None:
    _products(container, "LOG-A", "A")
    _changes(container, "A", 2)
    consumers = _positions_log(container)
    first, second, third = _outbox_envelopes(container, "A")

    deliver(container.db, consumers, third)  # e.g. a worker got the last message first
    deliver(container.db, consumers, first)  # late duplicates change nothing
    deliver(container.db, consumers, second)

    assert _seen(container, "LOG-A") == [first.position, second.position, third.position]


def test_concurrent_workers_keep_per_aggregate_order_and_apply_each_event_once(
    container: Container,
) -> None:
    skus = [f"P{n}" for n in range(4)]
    _products(container, *[f"LOG-{sku}" for sku in skus], *skus)
    for sku in skus:
        _changes(container, sku, 5)
    consumers = _positions_log(container)
    envelopes = _outbox_envelopes(container, *skus)
    # Every event delivered twice (at least once), shuffled, by four threads at once.
    work = envelopes * 2
    random.Random(7).shuffle(work)
    errors: list[BaseException] = []

    def worker(share: list[Envelope]) -> None:
        for envelope in share:
            try:
                deliver(container.db, consumers, envelope)
            except Exception as exc:  # a test failure, reported below
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(work[n::4],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    for sku in skus:
        expected = sorted(e.position for e in envelopes if e.aggregate_id == sku)
        assert _seen(container, f"LOG-{sku}") == expected
