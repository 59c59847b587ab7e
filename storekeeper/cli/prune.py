"""``storekeeper prune``: one retention pass now, or a dry run that only counts."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from storekeeper.cli.common import booted, console


def prune(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing")
    ] = False,
) -> None:
    """Delete what is past its retention: events, inbox rows, jobs, idempotency keys, mail files.

    The background leader does the same every STOREKEEPER_PRUNE_EVERY_S (an hour); the windows
    are STOREKEEPER_SYNC_RETENTION_DAYS, _JOB_DONE_RETENTION_DAYS, _JOB_FAILED_RETENTION_DAYS and
    _IDEMPOTENCY_RETENTION_HOURS (docs/operations.md, "Retention").
    """
    from storekeeper import retention

    with booted() as container, console.status("pruning" if not dry_run else "counting"):
        results = retention.prune(
            db=container.db,
            settings=container.settings,
            consumers=container.consumers,
            dry_run=dry_run,
        )
    title = "Retention (dry run: nothing deleted)" if dry_run else "Retention"
    table = Table("table", "would delete" if dry_run else "deleted", "oldest kept", title=title)
    for result in results:
        oldest = f"{result.oldest_kept:%Y-%m-%d %H:%M}" if result.oldest_kept else "-"
        table.add_row(result.table, str(result.rows), oldest)
    console.print(table)
