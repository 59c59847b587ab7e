"""The Celery app of distributed mode: event delivery and job runs on RabbitMQ or Redis.

Two queues (names prefixed with ``STOREKEEPER_BROKER_PREFIX``, so that several deployments can
share a broker). ``storekeeper.events`` carries one message per outbox event, published by the
leader in outbox order (with publisher confirms on RabbitMQ); a worker applies it with
``events.relay.deliver``, which keeps per-aggregate order and once-per-consumer effects however
many workers run; a consumer failing on an event is recorded (``events.failures``) rather than
retried here, and the leader's retry pass sends ``redeliver_event`` messages on the same queue
when the next attempt is due. ``storekeeper.jobs`` carries "run job N" messages; the job's row
in the database stays the source of truth (see ``tasks.queue``).

Tasks are acknowledged late and rejected back to the queue when their worker is lost, so a
message whose worker was killed is delivered again. The worker pool is threads: the work is
waiting on the database, the payment gateway and SMTP, and threads need no fork after the
database pool and the leader thread exist.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from celery import Celery

from storekeeper.config import Settings
from storekeeper.db import Database
from storekeeper.events import redelivery
from storekeeper.events.failures import RetryPolicy
from storekeeper.events.relay import Consumers, Envelope, Publish, deliver
from storekeeper.tasks import queue
from storekeeper.tasks.background import Background

DELIVER_EVENT = "storekeeper.deliver_event"
REDELIVER_EVENT = "storekeeper.redeliver_event"
RUN_JOB = "storekeeper.run_job"


def queue_names(settings: Settings) -> tuple[str, str]:
    """The events queue and the jobs queue of this deployment."""
    return f"{settings.broker_prefix}.events", f"{settings.broker_prefix}.jobs"


def create_celery(settings: Settings) -> Celery:
    """A Celery app on ``settings.broker_url``, able to publish; ``bind_tasks`` makes it run."""
    app = Celery("storekeeper", broker=settings.broker_url, set_as_current=False)
    events_queue, jobs_queue = queue_names(settings)
    transport_options: dict[str, Any] = {}
    if settings.broker_url.startswith(("amqp", "pyamqp")):
        # The broker confirms each message: a publish that returns is stored in the queue.
        transport_options["confirm_publish"] = True
    else:
        # Redis has no per-message acks: unacked messages come back after this many seconds.
        transport_options["visibility_timeout"] = max(60, int(settings.job_lease_s * 2))
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=jobs_queue,  # queues are declared durable when first used
        task_routes={
            DELIVER_EVENT: {"queue": events_queue},
            REDELIVER_EVENT: {"queue": events_queue},
            RUN_JOB: {"queue": jobs_queue},
        },
        broker_transport_options=transport_options,
        broker_connection_timeout=3,
        broker_connection_retry_on_startup=True,
        # Publishing is retried by the relay's next pass, not by blocking inside a pass.
        task_publish_retry=True,
        task_publish_retry_policy={"max_retries": 1, "interval_start": 0.2, "interval_step": 0.5},
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        # No broadcast control queue: nothing here uses `celery control`, and its per-node
        # exclusive queue would make two workers on one host collide.
        worker_enable_remote_control=False,
    )
    return app


def publisher(app: Celery, settings: Settings) -> tuple[Publish, Callable[[int], None]]:
    """The leader's two callables: publish an event, dispatch a job."""
    events_queue, jobs_queue = queue_names(settings)

    def publish(envelope: Envelope) -> None:
        app.send_task(DELIVER_EVENT, args=[envelope.to_message()], queue=events_queue)

    def dispatch(job_id: int) -> None:
        app.send_task(RUN_JOB, args=[job_id], queue=jobs_queue)

    return publish, dispatch


def redelivery_sender(app: Celery, settings: Settings) -> redelivery.Redeliver:
    """The leader's way to retry a failed delivery in distributed mode: a message to a worker."""
    events_queue, _ = queue_names(settings)

    def send(failure_id: int, attempts: int) -> None:
        app.send_task(REDELIVER_EVENT, args=[failure_id, attempts], queue=events_queue)

    return send


def bind_tasks(
    app: Celery,
    *,
    db: Database,
    settings: Settings,
    consumers: Consumers,
    jobs: queue.JobRegistry,
) -> None:
    """Register the worker's tasks: deliver events to ``consumers``, run ``jobs``."""
    policy = RetryPolicy.from_settings(settings)

    @app.task(  # type: ignore[untyped-decorator]
        name=DELIVER_EVENT,
        bind=True,
        max_retries=None,
        acks_late=True,
    )
    def deliver_event(task: Any, message: dict[str, Any]) -> None:
        envelope = Envelope.from_message(message)
        try:
            deliver(db, consumers, envelope, policy=policy)
        except Exception as exc:
            # A consumer's failure is recorded inside ``deliver`` and retried by the leader;
            # what reaches here is the database failing, so not even that could be written.
            # Retried with growing delays; later events of other aggregates carry on.
            retries = task.request.retries
            raise task.retry(exc=exc, countdown=min(300, 2**retries)) from exc

    @app.task(name=REDELIVER_EVENT, acks_late=True)  # type: ignore[untyped-decorator]
    def redeliver_event(failure_id: int, attempts: int) -> None:
        # Lost or failing here, the attempt is made again when the leader's postponement of it
        # runs out; a duplicate finds the attempt count moved on and does nothing.
        redelivery.redeliver_now(
            db, consumers, failure_id=failure_id, attempts=attempts, policy=policy
        )

    @app.task(name=RUN_JOB, acks_late=True)  # type: ignore[untyped-decorator]
    def run_job(job_id: int) -> None:
        job = queue.claim(db, job_id, lease_s=settings.job_lease_s)
        if job is not None:  # else done already, not due, or another worker holds it
            queue.run(job, db=db, jobs=jobs)


def delete_broker_queues(settings: Settings) -> None:
    """Remove this deployment's queues (and exchanges) from its broker: when a deployment is
    retired, or a test or benchmark run ends. Messages still in them are lost."""
    from kombu.connection import Connection
    from kombu.entity import Exchange, Queue

    names = queue_names(settings)
    with Connection(settings.broker_url, connect_timeout=3) as connection:
        channel = connection.default_channel
        if connection.transport.driver_type == "redis":
            # kombu's virtual transports delete only the bindings this channel knows about:
            # declare them first, as Celery did (an exchange named like the queue).
            for name in names:
                Queue(name, Exchange(name, type="direct"), routing_key=name)(channel).declare()
                channel.queue_delete(name)
            return
        for name in names:
            channel.queue_delete(name)
            channel.exchange_delete(name)


def run_worker(
    app: Celery,
    *,
    settings: Settings,
    leader: Background,
    concurrency: int,
    loglevel: str = "INFO",
) -> None:
    """Run ``app`` (its tasks bound) as a worker on both queues until told to stop.

    The process also runs ``leader`` (standing by while another process holds the lease), so a
    deployment of API processes and workers always has one process relaying the outbox.
    """
    leader.start()
    try:
        app.worker_main(
            [
                "worker",
                "--pool=threads",
                f"--concurrency={concurrency}",
                "--queues=" + ",".join(queue_names(settings)),
                "--without-mingle",
                "--without-gossip",
                f"--loglevel={loglevel}",
                f"--hostname=storekeeper-{os.getpid()}@%h",
            ]
        )
    finally:
        leader.stop()
