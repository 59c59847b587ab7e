"""The background threads of a process: the leader loop and, in embedded mode, the job runners.

Every ``serve`` and ``worker`` process starts one ``Background``. Its leader loop works only
while it holds the database lease ``background``, so one process in the whole deployment relays
the outbox (keeping events in order), hands due jobs to the broker, and runs the sweepers; the
others stand by and take over within a lease period if it dies. Job runner threads (embedded
mode) run in every process: jobs are claimed row by row, so any number may run side by side.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from storekeeper.config import Settings
from storekeeper.db import Database
from storekeeper.events import redelivery
from storekeeper.events.failures import RetryPolicy
from storekeeper.events.relay import BATCH, Consumers, Publish, local_delivery, relay_once
from storekeeper.observability import metrics
from storekeeper.tasks import queue
from storekeeper.tasks.lease import LeaderLease

log = logging.getLogger(__name__)
RETRY_EVERY_S = 1.0
"""How often the leader looks for failed deliveries whose next attempt is due."""


@dataclass(frozen=True, slots=True)
class Periodic:
    """Work the leader runs every ``every_s`` seconds (a sweeper)."""

    name: str
    every_s: float
    run: Callable[[], None]


class Background:
    """Starts and stops this process's background threads."""

    def __init__(
        self,
        *,
        db: Database,
        settings: Settings,
        consumers: Consumers,
        jobs: queue.JobRegistry,
        periodic: list[Periodic],
        publish: Publish | None = None,
        dispatch_job: Callable[[int], None] | None = None,
        redeliver: redelivery.Redeliver | None = None,
        job_threads: int = 0,
        tick_s: float = 0.2,
    ) -> None:
        """``publish``/``dispatch_job``/``redeliver`` go to a broker when given, else events
        are delivered (and failed deliveries retried) in-process; ``job_threads`` > 0 runs jobs
        from the table in this process."""
        self._db = db
        self._settings = settings
        self._jobs = jobs
        policy = RetryPolicy.from_settings(settings)
        # The retry pass of failed deliveries is the leader's work, like the sweepers.
        self._periodic = [
            Periodic(
                "events.retry_deliveries",
                RETRY_EVERY_S,
                lambda: self._retry_deliveries(
                    redeliver or redelivery.local_redeliver(db, consumers, policy)
                ),
            ),
            *periodic,
        ]
        self._publish = publish or local_delivery(db, consumers, policy)
        self._dispatch_job = dispatch_job
        self._tick = tick_s
        self._stop = threading.Event()
        self._wake_jobs = threading.Event()
        self.lease = LeaderLease(db, "background", ttl_s=settings.lease_s)
        self._threads = [threading.Thread(target=self._lead, name="leader", daemon=True)]
        self._threads += [
            threading.Thread(target=self._run_jobs, name=f"jobs-{n}", daemon=True)
            for n in range(job_threads)
        ]
        self._last_run: dict[str, float] = {}

    def start(self) -> None:
        """Start the threads."""
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Let running work finish, then stop; hand the lease over at once."""
        self._stop.set()
        self._wake_jobs.set()
        for thread in self._threads:
            thread.join(timeout=30)
        try:
            self.lease.release()
        except Exception:  # the database may be gone at shutdown; the lease then just expires
            log.warning("could not release the background lease", exc_info=True)

    def _lead(self) -> None:
        while not self._stop.is_set():
            busy = False
            try:
                if self.lease.hold():
                    busy = self._lead_once()
            except Exception:  # a database or broker hiccup must not end the loop for good
                log.exception("background pass failed; retrying")
            if not busy:  # a backlog is worked off without pausing between batches
                self._stop.wait(self._tick)

    def _lead_once(self) -> bool:
        """One pass; True when the outbox had a full batch (more may be waiting)."""
        relayed = relay_once(self._db, self._publish)
        metrics.RELAYED_EVENTS.inc(relayed)
        if relayed:
            self._wake_jobs.set()  # the consumers may have queued jobs
        if self._dispatch_job is not None:
            self._dispatch_due_jobs(self._dispatch_job)
        now = time.monotonic()
        for task in self._periodic:
            if now - self._last_run.get(task.name, float("-inf")) >= task.every_s:
                self._last_run[task.name] = now
                try:
                    task.run()
                except Exception:
                    log.exception("periodic task %s failed; it runs again later", task.name)
        return relayed >= BATCH

    def _retry_deliveries(self, redeliver: redelivery.Redeliver) -> None:
        redelivery.retry_due(
            self._db, redeliver=redeliver, redispatch_after_s=self._settings.job_lease_s
        )

    def _dispatch_due_jobs(self, dispatch: Callable[[int], None]) -> None:
        job_ids = queue.due_for_dispatch(self._db, redispatch_after_s=self._settings.job_lease_s)
        for index, job_id in enumerate(job_ids):
            try:
                dispatch(job_id)
            except Exception:
                log.exception("could not hand job %s to the broker; retrying", job_id)
                queue.undispatch(self._db, job_ids[index:])
                return

    def _run_jobs(self) -> None:
        lease_s = self._settings.job_lease_s
        while not self._stop.is_set():
            try:
                job = queue.claim_next(self._db, lease_s=lease_s)
            except Exception:
                log.exception("could not claim a job; retrying")
                job = None
            if job is None:
                self._wake_jobs.wait(self._tick)
                self._wake_jobs.clear()
                continue
            queue.run(job, db=self._db, jobs=self._jobs)
