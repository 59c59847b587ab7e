"""EV events/s through the outbox relay, per publisher: in-process consumers, RabbitMQ, Redis.

N ``order.confirmed`` events of real customers are written to a fresh database's outbox with
``outbox.record`` in one transaction per round, then ``relay_once`` passes are timed until none
is pending. ``inprocess`` is embedded mode: each event is delivered to the consumers bootstrap
wires (the notifications consumer: it reads the customer's e-mail address, queues a mail job and
records the event in its inbox, one transaction per event). ``rabbitmq`` and ``redis`` are
distributed mode's publisher: one Celery message per event (publisher confirms on RabbitMQ).
Ceilings, in alternating rounds: for a broker, the same N messages sent by the same Celery app
settings in a loop, no database; for ``inprocess``, one transaction inserting the same N inbox
rows with executemany through the driver. On PostgreSQL, a ``storekeeper worker`` then consumes
each broker's queue: the end-to-end delivery rate (``bench.ev_worker``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from bench import brokers, ev_worker, infra, replay, report, schedule, seed
from bench.infra import BenchDatabase
from bench.options import Options, environment
from storekeeper.bootstrap import Container
from storekeeper.config import Settings
from storekeeper.db import Database, utcnow
from storekeeper.events import outbox, relay
from storekeeper.events.relay import Envelope, Publish
from storekeeper.notifications.handlers import CONSUMER
from storekeeper.ordering.events import OrderConfirmed
from storekeeper.tasks.celery_app import DELIVER_EVENT, create_celery, publisher, queue_names

PUBLISHERS = ("inprocess", "rabbitmq", "redis")
EVENTS_PER_DURATION_S = 1000
"""N = 1000 x --duration events per publisher (10k by default, 5k with --duration 5)."""
CUSTOMERS = 32
PER_EVENT_ROWS = 1000
_RECORD_BATCH = 2000


@dataclass(frozen=True, slots=True)
class Timed:
    """Events handed on in some seconds."""

    events: int
    seconds: float
    passes: int = 0

    @property
    def rate(self) -> float:
        """Events per second."""
        return report.ratio(self.events, self.seconds)

    def to_json(self) -> dict[str, Any]:
        """Rounded, with the rate."""
        return {**asdict(self), "seconds": round(self.seconds, 3), "per_s": round(self.rate, 1)}


def _add(runs: list[Timed]) -> Timed:
    return Timed(
        sum(r.events for r in runs), sum(r.seconds for r in runs), sum(r.passes for r in runs)
    )


@dataclass(frozen=True, slots=True)
class PublisherRun:
    """One publisher's relay and ceiling, and what the database and broker say afterwards."""

    publisher: str
    relay: Timed
    ceiling: Timed
    problems: list[str]
    end_to_end: Timed | None = None
    per_event_tx: Timed | None = None
    """In-process only, a reference: the inbox rows with one transaction each."""
    skipped: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The figures for the results file."""
        return {
            "events_per_s": round(self.relay.rate, 1),
            "ceiling_per_s": round(self.ceiling.rate, 1),
            "ratio": round(report.ratio(self.relay.rate, self.ceiling.rate), 3),
            "relay": self.relay.to_json(),
            "ceiling": self.ceiling.to_json(),
            "end_to_end": self.end_to_end.to_json() if self.end_to_end else None,
            "inbox_row_per_transaction": self.per_event_tx.to_json() if self.per_event_tx else None,
            "skipped": self.skipped,
            "problems": self.problems,
        }


def event_count(opts: Options) -> int:
    """Events per publisher, a multiple of the rounds."""
    per_round = max(100, round(EVENTS_PER_DURATION_S * opts.duration_s / opts.rounds))
    return per_round * opts.rounds


def _events(customers: list[seed.Customer], count: int) -> list[OrderConfirmed]:
    return [
        OrderConfirmed(
            order_id=str(uuid.uuid4()),
            customer_id=str(customers[i % len(customers)].id),
            status="confirmed",
            total_cents=1999 + i % 500,
            currency="EUR",
        )
        for i in range(count)
    ]


def _record(db: Database, events: list[OrderConfirmed]) -> None:
    with db.transaction() as session:
        for start in range(0, len(events), _RECORD_BATCH):
            outbox.record(session, *events[start : start + _RECORD_BATCH])


def _relay_round(db: Database, publish: Publish, events: list[OrderConfirmed]) -> Timed:
    """Seed ``events`` (not timed), then time relay passes until none is pending."""
    _record(db, events)
    started, passes, total = time.monotonic(), 0, 0
    while published := relay.relay_once(db, publish):
        total, passes = total + published, passes + 1
    return Timed(total, time.monotonic() - started, passes)


def _messages(events: list[OrderConfirmed]) -> list[dict[str, Any]]:
    now = utcnow()
    return [
        Envelope(
            i, uuid.uuid4(), e.type, e.aggregate_type, e.aggregate_id, asdict(e), now
        ).to_message()
        for i, e in enumerate(events, start=1)
    ]


def _send_ceiling(settings: Settings) -> Callable[[list[OrderConfirmed]], Timed]:
    """The broker ceiling: the relay's ``send_task`` calls, same app settings, no database."""
    app = create_celery(settings)
    events_queue, _jobs = queue_names(settings)

    def run(events: list[OrderConfirmed]) -> Timed:
        messages = _messages(events)
        started = time.monotonic()
        for message in messages:
            app.send_task(DELIVER_EVENT, args=[message], queue=events_queue)
        return Timed(len(messages), time.monotonic() - started)

    return run


def _insert_inbox(db: BenchDatabase, count: int, *, per_row: bool) -> Timed:
    """``count`` inbox rows of the consumer through the raw driver, in one transaction or
    one transaction each."""
    driver = replay.driver_for(db.backend, db.driver_target)
    p = "?" if db.backend == "sqlite" else "%s"
    sql = f"INSERT INTO events_inbox (consumer, event_id, processed_at) VALUES ({p}, {p}, {p})"
    now = driver.ts(utcnow())
    rows = [(CONSUMER, driver.uuid(uuid.uuid4()), now) for _ in range(count)]
    conn = driver.connect()
    try:
        started = time.monotonic()
        for batch in [[row] for row in rows] if per_row else [rows]:
            with driver.write_lock:
                driver.begin(conn)
                conn.cursor().executemany(sql, batch)
                driver.commit(conn)
        return Timed(len(rows), time.monotonic() - started)
    finally:
        conn.close()


def _interleave(
    app: Callable[[list[OrderConfirmed]], Timed],
    ceiling: Callable[[list[OrderConfirmed]], Timed],
    customers: list[seed.Customer],
    opts: Options,
) -> tuple[Timed, Timed]:
    per_round = event_count(opts) // opts.rounds
    apps: list[Timed] = []
    ceilings: list[Timed] = []
    schedule.alternate(
        [
            lambda _round: apps.append(app(_events(customers, per_round))),
            lambda _round: ceilings.append(ceiling(_events(customers, per_round))),
        ],
        opts.rounds,
    )
    return _add(apps), _add(ceilings)


def _left_pending(db: Database, relayed: Timed, expected: int) -> list[str]:
    pending = relay.status(db).pending
    found = [f"{pending} events left pending in the outbox"] if pending else []
    if relayed.events != expected:
        found.append(f"{relayed.events} of {expected} events relayed")
    return found


def _inprocess(db: BenchDatabase, container: Container, opts: Options) -> PublisherRun:
    customers = seed.seed_customers(
        container.db, count=CUSTOMERS, signing_key=container.signing_key
    )
    publish = relay.local_delivery(container.db, container.consumers)
    relayed, ceiling = _interleave(
        lambda events: _relay_round(container.db, publish, events),
        lambda events: _insert_inbox(db, len(events), per_row=False),
        customers,
        opts,
    )
    problems = _left_pending(container.db, relayed, event_count(opts))
    processed = relay.processed_by_consumer(container.db).get(CONSUMER, 0)
    if processed != relayed.events + ceiling.events:
        problems.append(
            f"{CONSUMER} processed {processed - ceiling.events} of {relayed.events} events"
        )
    # Not the ceiling: how far the relay's one-transaction-per-event design allows it to go.
    per_event = _insert_inbox(db, min(PER_EVENT_ROWS, relayed.events), per_row=True)
    return PublisherRun("inprocess", relayed, ceiling, problems, per_event_tx=per_event)


def _broker(db: BenchDatabase, container: Container, name: str, opts: Options) -> PublisherRun:
    url = brokers.URLS[name]
    why = brokers.unreachable(url)
    if why is not None:
        problem = (
            f"{name} at {url.split('@')[-1]} is not reachable ({why}): start it (make services)"
        )
        return PublisherRun(name, Timed(0, 0), Timed(0, 0), [problem], skipped=problem)
    customers = seed.seed_customers(
        container.db, count=CUSTOMERS, signing_key=container.signing_key
    )
    settings = brokers.bench_settings(container.settings, url, name)
    ceiling_settings = brokers.bench_settings(container.settings, url, f"{name}-ceiling")
    with brokers.cleaned_up(settings, ceiling_settings):
        publish, _dispatch = publisher(create_celery(settings), settings)
        relayed, ceiling = _interleave(
            lambda events: _relay_round(container.db, publish, events),
            _send_ceiling(ceiling_settings),
            customers,
            opts,
        )
        problems = _left_pending(container.db, relayed, event_count(opts))
        for label, deployment, sent in (
            ("relay", settings, relayed),
            ("ceiling", ceiling_settings, ceiling),
        ):
            queued = brokers.depth(url, queue_names(deployment)[0])
            if queued != sent.events:
                problems.append(f"{label}: {sent.events} events sent, {queued} in the queue")
        end_to_end = None
        if db.backend == "postgresql" and not problems:
            consumed, worker_problems = ev_worker.consume(
                db, container.db, settings, relayed.events, opts
            )
            end_to_end = Timed(*consumed) if consumed else None
            problems += worker_problems
    return PublisherRun(name, relayed, ceiling, problems, end_to_end)


def _measure(backend: str, name: str, opts: Options) -> PublisherRun:
    with (
        infra.fresh_database(backend, f"ev_{name}", opts.workdir) as db,
        infra.container_for(db) as container,
    ):
        if name == "inprocess":
            return _inprocess(db, container, opts)
        return _broker(db, container, name, opts)


def run(backend: str, opts: Options) -> tuple[dict[str, Any], bool]:
    """Run EV on ``backend`` for every publisher; the document and whether all were clean."""
    report.heading(f"EV events through the outbox relay on {backend}")
    busy = schedule.background_busy()
    schedule.warn_if_busy(busy)
    count = event_count(opts)
    print(f"  {count} order.confirmed events per publisher, {opts.rounds} rounds", flush=True)
    runs = []
    for name in PUBLISHERS:
        result = _measure(backend, name, opts)
        _print(result)
        runs.append(result)
    clean = not any(r.problems for r in runs)
    document = {
        "workload": "EV",
        "name": "events-relay",
        "backend": backend,
        "figures": {r.publisher: round(r.relay.rate, 1) for r in runs},
        "publishers": {r.publisher: r.to_json() for r in runs},
        "clean": clean,
        "setup": {
            "events_per_publisher": count,
            "event": "order.confirmed (notifications consumer: e-mail job + inbox row)",
            "customers": CUSTOMERS,
            "relay_batch": 200,
            "rounds": opts.rounds,
            "brokers": {k: v.split("@")[-1] for k, v in brokers.URLS.items()},
            "ceilings": {
                "inprocess": "the same inbox rows, one executemany, one transaction, raw driver",
                "brokers": "the same messages via Celery send_task, same app settings "
                "(confirm_publish on RabbitMQ), no database",
            },
            "end_to_end": ev_worker.DESCRIPTION,
        },
        "environment": environment(busy),
    }
    return document, clean


def _print(result: PublisherRun) -> None:
    name = result.publisher
    if result.skipped:
        print(f"  NOT CLEAN: {name}: {result.skipped}", flush=True)
        return
    relayed, ceiling = result.relay, result.ceiling
    report.line(
        f"{name}, relay",
        f"{relayed.rate:8.1f} events/s   {relayed.events} events in {relayed.seconds:.2f} s, "
        f"{relayed.passes} passes",
    )
    what = "inbox executemany" if name == "inprocess" else "send_task loop"
    report.line(
        f"{name}, ceiling",
        f"{ceiling.rate:8.1f} events/s   ({what}, {ceiling.events} in {ceiling.seconds:.2f} s)",
    )
    report.line(f"{name}, ratio", f"{report.ratio(relayed.rate, ceiling.rate):.3f}")
    if result.per_event_tx is not None:
        tx = result.per_event_tx
        report.line(
            f"{name}, reference",
            f"{tx.rate:8.1f} events/s   (the same inbox rows, one transaction each: "
            f"{tx.events} in {tx.seconds:.2f} s; relay / this "
            f"{report.ratio(relayed.rate, tx.rate):.2f})",
        )
    if result.end_to_end is not None:
        e2e = result.end_to_end
        report.line(
            f"{name}, worker end to end",
            f"{e2e.rate:8.1f} events/s   {e2e.events} events processed by "
            f"`storekeeper worker` in {e2e.seconds:.2f} s",
        )
    for problem in result.problems:
        print(f"  NOT CLEAN: {name}: {problem}", flush=True)
