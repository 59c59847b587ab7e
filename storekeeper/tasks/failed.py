"""Jobs that failed for good, and what an operator does with them: list, retry, discard.

A job ends ``failed`` after its last attempt (or a ``PermanentJobError``). ``retry`` queues it
again with another full round of attempts (the count goes on, so its history stays true);
``discard`` sets it aside as ``discarded`` for good. Both are operator decisions: the command
line records who and why in the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.engine import Connection

from storekeeper.db import as_aware, utcnow
from storekeeper.errors import Conflict, NotFound
from storekeeper.tasks.models import Job
from storekeeper.tasks.queue import FAILED, QUEUED

_jobs = cast(Table, Job.__table__)
DISCARDED = "discarded"


class JobNotFound(NotFound):
    """No job has this id."""

    code = "job_not_found"


class JobNotFailed(Conflict):
    """Only a failed job can be retried or discarded."""

    code = "job_not_failed"


@dataclass(frozen=True, slots=True)
class FailedJob:
    """A job as operators see it in the failed list."""

    id: int
    name: str
    args: dict[str, Any]
    attempts: int
    max_attempts: int
    last_error: str
    created_at: datetime
    finished_at: datetime | None


_COLUMNS = (
    _jobs.c.id,
    _jobs.c.name,
    _jobs.c.args,
    _jobs.c.attempts,
    _jobs.c.max_attempts,
    _jobs.c.last_error,
    _jobs.c.created_at,
    _jobs.c.finished_at,
)


def _from_row(row: Any) -> FailedJob:
    return FailedJob(
        row.id,
        row.name,
        row.args,
        row.attempts,
        row.max_attempts,
        row.last_error or "",
        as_aware(row.created_at) or utcnow(),
        as_aware(row.finished_at),
    )


def list_failed(connection: Connection, *, limit: int = 200) -> list[FailedJob]:
    """Failed jobs, newest first."""
    rows = connection.execute(
        select(*_COLUMNS).where(_jobs.c.status == FAILED).order_by(_jobs.c.id.desc()).limit(limit)
    )
    return [_from_row(row) for row in rows]


def retry(connection: Connection, *, job_id: int) -> FailedJob:
    """Queue a failed job to run now, with as many attempts again as it had."""
    job = _failed_or_raise(connection, job_id)
    connection.execute(
        update(_jobs)
        .where(_jobs.c.id == job_id, _jobs.c.status == FAILED)
        .values(
            status=QUEUED,
            max_attempts=job.attempts + job.max_attempts,
            run_after=utcnow(),
            dispatched_at=None,
            locked_until=None,
            finished_at=None,
        )
    )
    return job


def discard(connection: Connection, *, job_id: int) -> FailedJob:
    """Set a failed job aside for good; it no longer counts as failed."""
    job = _failed_or_raise(connection, job_id)
    connection.execute(
        update(_jobs).where(_jobs.c.id == job_id, _jobs.c.status == FAILED).values(status=DISCARDED)
    )
    return job


def _failed_or_raise(connection: Connection, job_id: int) -> FailedJob:
    row = connection.execute(
        select(*_COLUMNS, _jobs.c.status).where(_jobs.c.id == job_id).with_for_update()
    ).first()
    if row is None:
        raise JobNotFound(f"no job {job_id}")
    if row.status != FAILED:
        raise JobNotFailed(f"job {job_id} is {row.status}, not failed")
    return _from_row(row)
