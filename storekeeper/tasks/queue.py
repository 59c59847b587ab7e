"""The durable job queue: enqueue in the caller's transaction, claim, finish, retry with backoff.

A job is a named function with JSON arguments. It is written to the ``jobs`` table in the same
transaction as the state change that needs it, so a crash can never keep the change and lose the
job (or the other way round). Runners claim a job by stamping a lease on its row; a job whose
runner died is claimed again once its lease runs out. Jobs are therefore run at least once and
must be idempotent: payment calls carry idempotency keys, e-mails deterministic Message-IDs.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, func, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from storekeeper.db import Database, as_aware, insert_ignoring_conflicts, utcnow
from storekeeper.observability import metrics
from storekeeper.tasks.models import Job

log = logging.getLogger(__name__)
_jobs = cast(Table, Job.__table__)

JobFunction = Callable[[dict[str, Any]], None]
"""Does the work of one job, its dependencies already bound; raises to have it retried later."""

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
MAX_BACKOFF_S = 300.0


class PermanentJobError(Exception):
    """The job cannot succeed however often it is retried (e.g. its order is gone)."""


@dataclass
class JobRegistry:
    """Which function runs which job name."""

    _functions: dict[str, JobFunction] = field(default_factory=dict)

    def register(self, name: str, function: JobFunction) -> None:
        """Have ``function`` run every job called ``name``."""
        if name in self._functions:
            raise ValueError(f"job {name!r} is registered twice")
        self._functions[name] = function

    def get(self, name: str) -> JobFunction | None:
        """The function for ``name``, if any."""
        return self._functions.get(name)


def enqueue(
    session: Session,
    name: str,
    args: dict[str, Any],
    *,
    key: str | None = None,
    max_attempts: int = 8,
    delay_s: float = 0.0,
) -> None:
    """Queue job ``name``; it commits (or not) with the caller's transaction.

    ``key`` makes the request idempotent: a second job with the same key is not queued, which
    lets an event consumer that runs twice ask for its job twice.
    """
    now = utcnow()
    row = {
        "name": name,
        "args": args,
        "key": key,
        "status": QUEUED,
        "attempts": 0,
        "max_attempts": max_attempts,
        "run_after": now + timedelta(seconds=delay_s),
        "created_at": now,
    }
    dialect = session.get_bind().dialect.name
    session.connection().execute(insert_ignoring_conflicts(dialect, _jobs).values(**row))


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job this runner holds the lease on."""

    id: int
    name: str
    args: dict[str, Any]
    attempts: int
    max_attempts: int


def _claimable(now: datetime) -> Any:
    return or_(
        and_(_jobs.c.status == QUEUED, _jobs.c.run_after <= now),
        and_(_jobs.c.status == RUNNING, _jobs.c.locked_until < now),
    )


def _claim(db: Database, where: Any, lease_s: float) -> ClaimedJob | None:
    now = utcnow()
    # SKIP LOCKED lets several PostgreSQL runners claim different rows without waiting on
    # each other; SQLite ignores it (its writers are serialized anyway).
    candidate = (
        select(_jobs.c.id)
        .where(where(now))
        .order_by(_jobs.c.run_after, _jobs.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    with db.transaction() as session:
        row = (
            session.connection()
            .execute(
                update(_jobs)
                .where(_jobs.c.id == candidate, where(now))
                .values(
                    status=RUNNING,
                    attempts=_jobs.c.attempts + 1,
                    locked_until=now + timedelta(seconds=lease_s),
                )
                .returning(
                    _jobs.c.id, _jobs.c.name, _jobs.c.args, _jobs.c.attempts, _jobs.c.max_attempts
                )
            )
            .first()
        )
    return ClaimedJob(*row) if row is not None else None


def claim_next(db: Database, *, lease_s: float) -> ClaimedJob | None:
    """Claim the job that is due first, or one whose runner's lease ran out.

    Looks with a read first: idle runners poll, and on SQLite every write transaction, even one
    that changes nothing, takes the database's single writer lock from the request threads.
    """
    with db.reading() as session:
        due = (
            session.connection()
            .execute(select(_jobs.c.id).where(_claimable(utcnow())).limit(1))
            .first()
        )
    if due is None:
        return None
    return _claim(db, _claimable, lease_s)


def claim(db: Database, job_id: int, *, lease_s: float) -> ClaimedJob | None:
    """Claim job ``job_id`` if it is due and nobody holds it (a Celery message names it)."""
    return _claim(db, lambda now: and_(_jobs.c.id == job_id, _claimable(now)), lease_s)


def run(job: ClaimedJob, *, db: Database, jobs: JobRegistry) -> bool:
    """Run a claimed job and record how it went; True when it is done."""
    function = jobs.get(job.name)
    try:
        if function is None:
            raise PermanentJobError(f"no function is registered for job {job.name!r}")
        function(job.args)
    except Exception as exc:  # any failure of a job is recorded on it and retried
        _failed(db, job, exc)
        return False
    with db.transaction() as session:
        session.connection().execute(
            update(_jobs)
            .where(_jobs.c.id == job.id)
            .values(status=DONE, finished_at=utcnow(), locked_until=None, last_error=None)
        )
    metrics.JOB_RUNS.labels(job.name, "done").inc()
    return True


def backoff_s(attempts: int) -> float:
    """Exponential backoff with full jitter: 1, 2, 4 … s (capped), times a random 0.5 to 1.5."""
    return float(min(MAX_BACKOFF_S, 2.0 ** (attempts - 1)) * random.uniform(0.5, 1.5))  # noqa: S311


def _failed(db: Database, job: ClaimedJob, exc: Exception) -> None:
    error = f"{type(exc).__name__}: {exc}"[:2000]
    final = isinstance(exc, PermanentJobError) or job.attempts >= job.max_attempts
    if final:
        log.error(
            "job %s (%s) failed for good after %d attempts: %s",
            job.id,
            job.name,
            job.attempts,
            error,
        )
        values: dict[str, Any] = {"status": FAILED, "finished_at": utcnow()}
    else:
        delay = backoff_s(job.attempts)
        log.warning(
            "job %s (%s) attempt %d failed, retrying in %.1fs: %s",
            job.id,
            job.name,
            job.attempts,
            delay,
            error,
        )
        values = {
            "status": QUEUED,
            "run_after": utcnow() + timedelta(seconds=delay),
            "dispatched_at": None,
        }
    with db.transaction() as session:
        session.connection().execute(
            update(_jobs)
            .where(_jobs.c.id == job.id)
            .values(locked_until=None, last_error=error, **values)
        )
    metrics.JOB_RUNS.labels(job.name, "failed" if final else "retry").inc()


def due_for_dispatch(db: Database, *, redispatch_after_s: float, limit: int = 200) -> list[int]:
    """Jobs a broker should be told about: due and never sent, sent long ago, or abandoned.

    Marks them dispatched now. A message that got lost (a broker restarted without keeping it)
    is thus sent again; one that merely waits in a long queue may be sent twice, which the
    claim turns into a no-op.
    """
    now = utcnow()
    stale = now - timedelta(seconds=redispatch_after_s)
    where = or_(
        and_(
            _jobs.c.status == QUEUED,
            _jobs.c.run_after <= now,
            or_(_jobs.c.dispatched_at.is_(None), _jobs.c.dispatched_at < stale),
        ),
        and_(
            _jobs.c.status == RUNNING,
            _jobs.c.locked_until < now,
            or_(_jobs.c.dispatched_at.is_(None), _jobs.c.dispatched_at < stale),
        ),
    )
    with db.transaction() as session:
        connection = session.connection()
        ids = list(
            connection.execute(
                select(_jobs.c.id).where(where).order_by(_jobs.c.run_after).limit(limit)
            ).scalars()
        )
        if ids:
            connection.execute(update(_jobs).where(_jobs.c.id.in_(ids)).values(dispatched_at=now))
    return ids


def undispatch(db: Database, job_ids: list[int]) -> None:
    """Forget that these jobs were sent (their publish failed) so the next pass sends them."""
    if job_ids:
        with db.transaction() as session:
            session.connection().execute(
                update(_jobs).where(_jobs.c.id.in_(job_ids)).values(dispatched_at=None)
            )


@dataclass(frozen=True, slots=True)
class JobStatus:
    """How many jobs are in each state, and the oldest waiting one."""

    counts: dict[str, int]
    oldest_queued_at: datetime | None
    failed_recent: list[tuple[int, str, str]]


def status(db: Database) -> JobStatus:
    """Counts per status, the oldest queued job, and the last failures with their errors."""
    with db.reading() as session:
        connection = session.connection()
        counts = {
            state: count
            for state, count in connection.execute(
                select(_jobs.c.status, func.count()).group_by(_jobs.c.status)
            ).all()
        }
        oldest = connection.execute(
            select(func.min(_jobs.c.created_at)).where(_jobs.c.status == QUEUED)
        ).scalar()
        failed = [
            (row.id, row.name, row.last_error or "")
            for row in connection.execute(
                select(_jobs.c.id, _jobs.c.name, _jobs.c.last_error)
                .where(_jobs.c.status == FAILED)
                .order_by(_jobs.c.id.desc())
                .limit(10)
            )
        ]
    return JobStatus(counts, as_aware(oldest), failed)


def queued_by_name(connection: Connection) -> dict[str, int]:
    """How many jobs wait to run, per job name (for the metrics gauge)."""
    rows = connection.execute(
        select(_jobs.c.name, func.count()).where(_jobs.c.status == QUEUED).group_by(_jobs.c.name)
    )
    return {name: count for name, count in rows.all()}
