"""EV's end-to-end figure: a real ``storekeeper worker`` consuming what the relay published.

The worker starts once the relay has filled the events queue; each message is delivered with
``events.relay.deliver`` (the consumer's effect and its inbox row, one transaction), while the
worker's leader thread hands the mail jobs the consumer queued back to the broker for it to run:
a distributed deployment's whole path. It runs for ``--duration`` seconds from its first
delivery; the rate comes from the inbox rows' ``processed_at``, first to last, so the worker's
start-up is not counted.
"""

from __future__ import annotations

import subprocess
import time
from datetime import datetime

from sqlalchemy import func, select

from bench import infra
from bench.infra import BenchDatabase
from bench.options import Options
from storekeeper.config import Settings
from storekeeper.db import Database
from storekeeper.events.models import InboxRecord
from storekeeper.notifications.handlers import CONSUMER

DESCRIPTION = (
    "PostgreSQL only: `storekeeper worker` (default concurrency) started on the queue the "
    "relay filled, stopped --duration seconds after its first delivery (or when the queue is "
    "empty); events/s between the first and the last inbox row it wrote"
)
_POLL_S = 0.2
_STOP_TIMEOUT_S = 30.0
_START_TIMEOUT_S = 60.0


def _inbox(db: Database) -> tuple[int, datetime | None, datetime | None]:
    with db.reading() as session:
        count, first, last = session.execute(
            select(
                func.count(), func.min(InboxRecord.processed_at), func.max(InboxRecord.processed_at)
            ).where(InboxRecord.consumer == CONSUMER)
        ).one()
    return int(count), first, last


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()  # Celery's warm shutdown: running tasks finish first
    try:
        process.wait(timeout=_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=_STOP_TIMEOUT_S)


def consume(
    db: BenchDatabase, database: Database, settings: Settings, queued: int, opts: Options
) -> tuple[tuple[int, float] | None, list[str]]:
    """Run a worker on ``queued`` waiting events for ``--duration`` seconds from its first
    delivery (or until all are done): (events, seconds between first and last), problems."""
    env = infra.server_env(
        db,
        {
            "STOREKEEPER_BROKER_URL": settings.broker_url,
            "STOREKEEPER_BROKER_PREFIX": settings.broker_prefix,
        },
    )
    log_path = opts.workdir / f"EV-{settings.broker_prefix}-worker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            infra.storekeeper_cli("worker"),
            env=env,
            cwd=opts.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait(database, process, queued, opts.duration_s)
            exited = process.poll()
        finally:
            _stop(process)
    count, first, last = _inbox(database)
    tail = log_path.read_text(errors="replace")[-2000:]
    if exited is not None:
        return None, [f"the worker exited on its own (status {exited}):\n{tail}"]
    if not count or first is None or last is None:
        return None, [f"the worker processed no event in {_START_TIMEOUT_S:.0f} s:\n{tail}"]
    return (count, (last - first).total_seconds()), []


def _wait(
    database: Database, process: subprocess.Popen[bytes], queued: int, duration_s: float
) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    started = False
    while time.monotonic() < deadline and process.poll() is None:
        count = _inbox(database)[0]
        if count >= queued:
            return
        if count and not started:
            started, deadline = True, time.monotonic() + duration_s
        time.sleep(_POLL_S)
