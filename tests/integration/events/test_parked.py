"""Poison events: a consumer that fails on one event holds back only its own later events of
that aggregate; the event is retried with backoff, parked after N attempts, and an operator's
retry or skip lets the waiting ones flow, in order and once each."""

from __future__ import annotations

import time

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storekeeper.bootstrap import Container
from storekeeper.catalog import service as catalog_service
from storekeeper.events import failures, redelivery
from storekeeper.events.failures import Failure, RetryPolicy
from storekeeper.events.models import DeliveryFailure, InboxRecord, OutboxEvent
from storekeeper.events.relay import Consumers, Envelope, local_delivery, relay_once
from storekeeper.observability import metrics
from storekeeper.observability.exposition import DatabaseCollector

POLICY = RetryPolicy(max_attempts=3, base_s=0.01)


def _products(container: Container, *skus: str) -> None:
    for sku in skus:
        with container.db.transaction() as session:
            catalog_service.create(
                session, data={"sku": sku, "name": sku, "price_cents": 1, "currency": "EUR"}
            )


def _change(container: Container, sku: str, name: str) -> None:
    with container.db.transaction() as session:
        catalog_service.update(session, sku=sku, changes={"name": name})


class Shop:
    """Products A and B, each created and renamed twice, and two consumers logging what they
    see per aggregate (into log products, so a consumer's effect is a real, transactional
    write, of SKU and version: ``A1`` is A's creation, ``A2`` its first rename): ``audit`` takes
    everything, ``picky`` raises on the events named in ``poison``.
    """

    def __init__(self, container: Container) -> None:
        self.container = container
        self.poison: set[str] = set()
        _products(container, "LOG-audit-A", "LOG-audit-B", "LOG-picky-A", "LOG-picky-B")
        self.consumers = Consumers()
        self.consumers.subscribe("audit", "product.changed", self._logger("audit"))
        self.consumers.subscribe("picky", "product.changed", self._logger("picky"))
        _products(container, "A", "B")
        for sku in ("A", "B"):
            _change(container, sku, f"{sku}1")
            _change(container, sku, f"{sku}2")

    def _logger(self, consumer: str):  # type: ignore[no-untyped-def]
        def handler(session: Session, envelope: Envelope) -> None:
            if envelope.aggregate_id.startswith("LOG-"):
                return
            name = f"{envelope.payload['sku']}{envelope.payload['version']}"
            if consumer == "picky" and name in self.poison:
                raise ValueError(f"cannot handle {name}")
            log = catalog_service.get_or_raise(
                session, sku=f"LOG-{consumer}-{envelope.aggregate_id}"
            )
            log.attributes = {"seen": [*log.attributes.get("seen", []), name]}

        return handler

    def label_of(self, position: int) -> str:
        """What the loggers write for the event at ``position``: SKU and version (``A2``)."""
        with self.container.db.reading() as session:
            row = session.get(OutboxEvent, position)
            assert row is not None
        return f"{row.payload['sku']}{row.payload['version']}"

    def relay(self) -> int:
        return relay_once(
            self.container.db, local_delivery(self.container.db, self.consumers, POLICY)
        )

    def seen(self, consumer: str, sku: str) -> list[str]:
        with self.container.db.reading() as session:
            log = catalog_service.get_or_raise(session, sku=f"LOG-{consumer}-{sku}")
            return list(log.attributes.get("seen", []))

    def open_failures(self) -> list[Failure]:
        with self.container.db.reading() as session:
            return failures.list_open(session.connection(), parked_only=False)

    def retry_pass(self) -> int:
        return redelivery.retry_due(
            self.container.db,
            redeliver=redelivery.local_redeliver(self.container.db, self.consumers, POLICY),
            redispatch_after_s=60,
        )

    def park(self) -> Failure:
        """Run the retry pass until the one open failure is parked."""
        deadline = time.monotonic() + 30
        while True:
            (failure,) = self.open_failures()
            if failure.parked_at is not None:
                return failure
            assert time.monotonic() < deadline, "never parked"
            self.retry_pass()
            time.sleep(0.01)


def _versions(sku: str, last: int) -> list[str]:
    return [f"{sku}{version}" for version in range(1, last + 1)]


def _parked_gauge(container: Container) -> dict[str, float]:
    for family in DatabaseCollector(container.db, ttl_s=0).collect():
        if family.name == metrics.EVENTS_PARKED.name:
            return {sample.labels["consumer"]: sample.value for sample in family.samples}
    raise AssertionError("no parked gauge")


def test_a_failing_consumer_holds_back_only_its_later_events_of_that_aggregate(
    container: Container,
) -> None:
    shop = Shop(container)
    shop.poison = {"A2"}

    shop.relay()

    # Every event is handed on: nothing waits in the outbox.
    with container.db.reading() as session:
        assert (
            session.scalars(select(OutboxEvent).where(OutboxEvent.published_at.is_(None))).all()
            == []
        )
    # The other consumer of the failing event got everything, in order.
    assert shop.seen("audit", "A") == _versions("A", 3)
    assert shop.seen("audit", "B") == _versions("B", 3)
    # The failing consumer goes on with other aggregates; A2 waits behind A1.
    assert shop.seen("picky", "B") == _versions("B", 3)
    assert shop.seen("picky", "A") == ["A1"]
    (failure,) = shop.open_failures()
    assert (failure.consumer, failure.aggregate, failure.attempts) == ("picky", "product/A", 1)
    assert shop.label_of(failure.position) == "A2"
    assert "ValueError: cannot handle A2" in failure.last_error
    assert failure.next_attempt_at is not None and failure.parked_at is None

    # A later event of A arriving now waits too, one of B flows.
    _change(container, "A", "A-again")
    _change(container, "B", "B-again")
    shop.relay()
    assert shop.seen("picky", "A") == ["A1"]
    assert shop.seen("picky", "B") == _versions("B", 4)


def test_after_max_attempts_the_event_is_parked_and_the_gauge_shows_it(
    container: Container,
) -> None:
    shop = Shop(container)
    shop.poison = {"A2"}
    counter = metrics.EVENT_DELIVERY_FAILURES.labels("picky")
    before = counter._value.get()
    shop.relay()

    failure = shop.park()

    assert failure.attempts == POLICY.max_attempts
    assert failure.next_attempt_at is None and failure.resolved_at is None
    assert counter._value.get() - before == POLICY.max_attempts
    assert shop.retry_pass() == 0  # parked: no more automatic attempts
    assert _parked_gauge(container) == {"picky": 1}
    assert shop.seen("picky", "A") == ["A1"]
    with container.db.reading() as session:
        assert [f.id for f in failures.list_open(session.connection())] == [failure.id]


def test_a_transient_failure_is_retried_and_the_waiting_events_follow(
    container: Container,
) -> None:
    shop = Shop(container)
    shop.poison = {"A2"}
    shop.relay()
    shop.poison = set()  # the cause went away before the second attempt

    deadline = time.monotonic() + 30
    while shop.open_failures():
        assert time.monotonic() < deadline
        shop.retry_pass()
        time.sleep(0.01)

    assert shop.seen("picky", "A") == _versions("A", 3)
    with container.db.reading() as session:
        (failure,) = session.scalars(select(DeliveryFailure)).all()
    assert (failure.resolution, failure.attempts) == ("delivered", 1)


def test_retry_after_the_fix_delivers_the_parked_event_then_the_waiting_ones_in_order(
    container: Container,
) -> None:
    shop = Shop(container)
    shop.poison = {"A2"}
    shop.relay()
    _change(container, "A", "A-again")
    shop.relay()
    failure = shop.park()

    shop.poison = set()  # the bug is fixed
    with container.db.transaction() as session:
        outcome = redelivery.retry(
            session, consumers=shop.consumers, failure_id=failure.id, policy=POLICY, by="ops"
        )

    assert outcome.resolved and outcome.failed is None and outcome.applied == 3
    assert (outcome.failure.resolution, outcome.failure.resolved_by) == ("delivered", "ops")
    assert shop.seen("picky", "A") == _versions("A", 4)
    assert shop.seen("audit", "A") == _versions("A", 4)  # not run again
    assert _parked_gauge(container) == {"picky": 0}
    # A redelivery of everything (a relay that lost its marks) applies nothing twice.
    with container.db.transaction() as session:
        session.execute(update(OutboxEvent).values(published_at=None))
    shop.relay()
    assert shop.seen("picky", "A") == _versions("A", 4)


def test_a_retry_that_fails_again_keeps_it_parked_with_the_new_error(
    container: Container,
) -> None:
    shop = Shop(container)
    shop.poison = {"A2"}
    shop.relay()
    failure = shop.park()

    with container.db.transaction() as session:
        outcome = redelivery.retry(
            session, consumers=shop.consumers, failure_id=failure.id, policy=POLICY, by="ops"
        )

    assert not outcome.resolved and outcome.failed is not None
    assert outcome.failure.attempts == POLICY.max_attempts + 1
    assert outcome.failure.parked_at == failure.parked_at
    assert shop.seen("picky", "A") == ["A1"]


def test_skip_lets_the_later_events_flow_and_is_recorded(container: Container) -> None:
    shop = Shop(container)
    shop.poison = {"A2"}
    shop.relay()
    failure = shop.park()

    with container.db.transaction() as session:
        outcome = redelivery.skip(
            session,
            consumers=shop.consumers,
            failure_id=failure.id,
            reason="malformed by an old release",
            by="ops",
            policy=POLICY,
        )

    assert outcome.resolved and outcome.applied == 1
    assert (outcome.failure.resolution, outcome.failure.resolved_by, outcome.failure.reason) == (
        "skipped",
        "ops",
        "malformed by an old release",
    )
    assert shop.seen("picky", "A") == ["A1", "A3"]  # A2 never applied, A3 no longer waits
    with container.db.reading() as session:
        inbox = session.get(InboxRecord, ("picky", failure.event_id))
        assert inbox is not None  # processed, by skipping
    # The skipped event delivered again does nothing; a new event of A flows at once.
    with container.db.transaction() as session:
        session.execute(update(OutboxEvent).values(published_at=None))
    _change(container, "A", "A-again")
    shop.relay()
    assert shop.seen("picky", "A") == ["A1", "A3", "A4"]
    assert shop.open_failures() == []


def test_resolved_failures_cannot_be_resolved_again(container: Container) -> None:
    shop = Shop(container)
    shop.poison = {"A2"}
    shop.relay()
    (failure,) = shop.open_failures()
    with container.db.transaction() as session:
        redelivery.skip(
            session,
            consumers=shop.consumers,
            failure_id=failure.id,
            reason="r",
            by="ops",
            policy=POLICY,
        )
    for action in ("retry", "skip"):
        with container.db.transaction() as session:
            try:
                if action == "retry":
                    redelivery.retry(
                        session,
                        consumers=shop.consumers,
                        failure_id=failure.id,
                        policy=POLICY,
                        by="ops",
                    )
                else:
                    redelivery.skip(
                        session,
                        consumers=shop.consumers,
                        failure_id=failure.id,
                        reason="r",
                        by="ops",
                        policy=POLICY,
                    )
            except failures.FailureResolved:
                continue
        raise AssertionError(f"{action} of a resolved failure was accepted")
