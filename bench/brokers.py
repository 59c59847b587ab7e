"""The message brokers EV publishes to: where they are, and leaving nothing behind on them.

Every run publishes under a prefix of its own (``STOREKEEPER_BROKER_PREFIX``), so its queues
never meet a deployment's or another run's, and deletes them (and, on RabbitMQ, the exchanges
Celery declared for them) when it is done.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

from kombu import Connection

from bench.infra import require_loopback
from storekeeper.config import Settings
from storekeeper.tasks.celery_app import delete_broker_queues

URLS = {
    "rabbitmq": os.environ.get("STOREKEEPER_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//"),
    "redis": os.environ.get("STOREKEEPER_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
}
_CONNECT_TIMEOUT_S = 3


def unreachable(url: str) -> str | None:
    """Why the broker at ``url`` cannot be used, or None when it answers."""
    require_loopback(url)
    try:
        with Connection(url, connect_timeout=_CONNECT_TIMEOUT_S) as connection:
            connection.ensure_connection(max_retries=1, timeout=_CONNECT_TIMEOUT_S)
    except Exception as exc:  # any failure to connect is reported, not raised
        return f"{type(exc).__name__}: {exc}"
    return None


def bench_settings(settings: Settings, url: str, label: str) -> Settings:
    """``settings`` on the broker at ``url``, with a prefix no one else uses."""
    prefix = f"sk-bench-{label}-{uuid.uuid4().hex[:10]}"
    return settings.model_copy(update={"broker_url": url, "broker_prefix": prefix})


def depth(url: str, queue: str) -> int:
    """Messages waiting in ``queue`` (0 when it does not exist)."""
    with Connection(url, connect_timeout=_CONNECT_TIMEOUT_S) as connection:
        try:
            ok = connection.default_channel.queue_declare(queue=queue, passive=True)
        except Exception:  # the queue does not exist (RabbitMQ closes the channel)
            return 0
        return int(ok.message_count)


def delete_queues(settings: Settings) -> None:
    """Delete this deployment's queues (and exchanges) from its broker."""
    delete_broker_queues(settings)


@contextlib.contextmanager
def cleaned_up(*deployments: Settings) -> Iterator[None]:
    """Delete the deployments' queues when the block ends, however it ends."""
    try:
        yield
    finally:
        for settings in deployments:
            try:
                delete_queues(settings)
            except Exception as exc:  # say so, but do not hide the block's own error
                print(
                    f"  WARNING: could not delete the queues of {settings.broker_prefix} "
                    f"on {settings.broker_url.split('@')[-1]}: {exc}",
                    flush=True,
                )
