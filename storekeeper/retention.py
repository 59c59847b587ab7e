"""Retention: one pass over everything that grows with use, each table pruned by its owner.

Like ``bootstrap`` this module sits above the contexts: it names what each one keeps and for
how long (``STOREKEEPER_*_RETENTION_*``), and is run by the background leader every
``STOREKEEPER_PRUNE_EVERY_S`` and by ``storekeeper prune [--dry-run]``.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from storekeeper.config import Settings
from storekeeper.db import Database, utcnow
from storekeeper.events import retention as events_retention
from storekeeper.events.relay import Consumers
from storekeeper.events.retention import Pruned
from storekeeper.notifications import mail
from storekeeper.observability import metrics
from storekeeper.ordering import idempotency
from storekeeper.tasks import retention as jobs_retention

log = logging.getLogger(__name__)


def prune(
    *, db: Database, settings: Settings, consumers: Consumers, dry_run: bool = False
) -> list[Pruned]:
    """Prune every table past its retention (count only, with ``dry_run``)."""
    now = utcnow()
    results = [
        *events_retention.prune_outbox(
            db,
            consumers_of=consumers.of,
            before=now - timedelta(days=settings.sync_retention_days),
            dry_run=dry_run,
        ),
        events_retention.prune_failures(
            db, before=now - timedelta(days=settings.sync_retention_days), dry_run=dry_run
        ),
        jobs_retention.prune_jobs(
            db,
            done_before=now - timedelta(days=settings.job_done_retention_days),
            failed_before=now - timedelta(days=settings.job_failed_retention_days),
            dry_run=dry_run,
        ),
        idempotency.prune(
            db, before=now - timedelta(hours=settings.idempotency_retention_hours), dry_run=dry_run
        ),
        mail.prune_mail_files(
            settings.data_dir / "outbox-mail",
            before=now - timedelta(days=settings.sync_retention_days),
            dry_run=dry_run,
        ),
    ]
    if not dry_run:
        for result in results:
            metrics.PRUNED_ROWS.labels(result.table).inc(result.rows)
            age = (now - result.oldest_kept).total_seconds() if result.oldest_kept else 0.0
            metrics.OLDEST_RETAINED.labels(result.table).set(age)
    return results


def prune_periodically(*, db: Database, settings: Settings, consumers: Consumers) -> None:
    """The leader's retention pass (``STOREKEEPER_PRUNE_EVERY_S``)."""
    pruned = [r for r in prune(db=db, settings=settings, consumers=consumers) if r.rows]
    if pruned:
        log.info("retention: %s", ", ".join(f"{r.rows} {r.table}" for r in pruned))
