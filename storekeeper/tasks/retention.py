"""Pruning finished jobs: ``done`` ones after a week, ``failed`` ones after a month (defaults).

A failed job is kept longer than a done one: somebody may still want to read its error or
retry it. Deleting a job frees its de-duplication ``key`` too; the windows are far longer than
any job's retries.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, func, select

from storekeeper.db import Database, as_aware
from storekeeper.events.retention import Pruned, delete_in_batches
from storekeeper.tasks.models import Job

_jobs = cast(Table, Job.__table__)


def prune_jobs(
    db: Database, *, done_before: datetime, failed_before: datetime, dry_run: bool = False
) -> Pruned:
    """Delete ``done`` jobs finished before ``done_before``, ``failed`` (and ``discarded``) ones
    before ``failed_before``."""
    finished = ((_jobs.c.status == "done") & (_jobs.c.finished_at < done_before)) | (
        _jobs.c.status.in_(("failed", "discarded")) & (_jobs.c.finished_at < failed_before)
    )
    pruned = delete_in_batches(db, _jobs, where=finished, key=[_jobs.c.id], dry_run=dry_run)
    with db.reading() as session:
        oldest = session.connection().execute(select(func.min(_jobs.c.created_at))).scalar()
    return Pruned("jobs", pruned, as_aware(oldest))
