"""The embedded-mode outbox relay: in order, at least once, idempotent per consumer."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storekeeper.bootstrap import Container
from storekeeper.catalog import service as catalog_service
from storekeeper.events.models import OutboxEvent
from storekeeper.events.relay import Consumers, Envelope, local_delivery, relay_once, status


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


def test_a_failing_consumer_holds_later_events_back_until_it_succeeds(
    container: Container,
) -> None:
    _products(container, "LOG", "A", "B")
    broken = {"on": "A"}

    def flaky(session: Session, envelope: Envelope) -> None:
        if envelope.aggregate_id == broken["on"]:
            raise RuntimeError("mail server down")

    consumers = Consumers()
    consumers.subscribe("audit", "product.changed", _count_on("LOG"))  # type: ignore[arg-type]
    consumers.subscribe("mailer", "product.changed", flaky)

    assert _relay(container, consumers) == 1  # LOG delivered, stuck at A
    assert _seen(container, "LOG") == ["LOG", "A"]  # audit ran on A once; B waits
    assert status(container.db).pending == 2

    broken["on"] = ""
    assert _relay(container, consumers) == 2
    assert _seen(container, "LOG") == ["LOG", "A", "B"]  # audit not run twice on A
    with container.db.reading() as session:
        unsent = session.scalars(select(OutboxEvent).where(OutboxEvent.published_at.is_(None)))
        assert list(unsent) == []


def test_status_reports_pending_events_and_their_age(container: Container) -> None:
    _products(container, "A", "B")

    before = status(container.db)
    _relay(container, Consumers())
    after = status(container.db)

    assert (before.pending, before.published) == (2, 0)
    assert before.oldest_pending_at is not None and before.lag_s >= 0
    assert (after.pending, after.published, after.lag_s) == (0, 2, 0.0)
    assert after.last_published_at is not None
