"""``storekeeper events parked|retry|skip`` and ``storekeeper jobs failed|retry|discard``.

What an operator does about work that failed for good: a consumer's parked event (it holds back
that consumer's later events of the same aggregate) and a failed job. Retrying and skipping or
discarding are recorded in the audit log with who ran the command and why.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from storekeeper.cli.common import booted, console, operator
from storekeeper.config import Settings

if TYPE_CHECKING:
    from storekeeper.events.failures import Failure

_ERROR_CHARS = 80
ReasonOption = Annotated[str, typer.Option("--reason", help="Why (kept in the audit log)")]


def _require(reason: str) -> str:
    if not reason.strip():
        console.print("[red]--reason[/red] must say why (it goes into the audit log)")
        raise typer.Exit(2)
    return reason.strip()


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment else "-"


def _short(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= _ERROR_CHARS else line[: _ERROR_CHARS - 1] + "…"


def events_parked(
    include_retrying: Annotated[
        bool, typer.Option("--all", help="Also list failures still being retried")
    ] = False,
) -> None:
    """List events parked for a consumer after their last retry (oldest first)."""
    from storekeeper.events import failures

    with booted() as container, container.db.reading() as session:
        shown = failures.list_open(session.connection(), parked_only=not include_retrying)
    if not shown:
        console.print("no parked events" if not include_retrying else "no failing deliveries")
        return
    table = Table(title="Parked events" if not include_retrying else "Failing deliveries")
    for name in ("id", "consumer", "event type"):
        table.add_column(name)
    # The aggregate's full id is what an operator looks up: fold it rather than cut it.
    table.add_column("aggregate", overflow="fold")
    table.add_column("attempts")
    table.add_column("error", max_width=60)
    table.add_column("since")
    for failure in shown:
        since = failure.parked_at or failure.first_failed_at
        if failure.parked_at is None:
            since_text = f"{_when(since)} (retry at {_when(failure.next_attempt_at)})"
        else:
            since_text = _when(since)
        table.add_row(
            str(failure.id),
            failure.consumer,
            failure.event_type,
            failure.aggregate,
            str(failure.attempts),
            _short(failure.last_error),
            since_text,
        )
    console.print(table)


def events_retry(
    failure_id: Annotated[int, typer.Argument(help="The id from storekeeper events parked")],
) -> None:
    """Deliver a parked event now, then the events of its aggregate that waited behind it."""
    from storekeeper.accounts import audit
    from storekeeper.events import redelivery
    from storekeeper.events.failures import RetryPolicy

    settings = Settings()
    by = operator()
    with booted(settings) as container, container.db.transaction() as session:
        outcome = redelivery.retry(
            session,
            consumers=container.consumers,
            failure_id=failure_id,
            policy=RetryPolicy.from_settings(settings),
            by=by,
        )
        audit.record(
            session,
            "event_retried",
            operator=by,
            failure_id=failure_id,
            consumer=outcome.failure.consumer,
            event_id=str(outcome.failure.event_id),
            delivered=outcome.resolved,
        )
    failure = outcome.failure
    if not outcome.resolved:
        console.print(
            f"[red]failed again[/red] (attempt {failure.attempts}), still parked: "
            f"{failure.last_error}",
            highlight=False,
        )
        raise typer.Exit(1)
    console.print(
        f"delivered event {failure.position} to {failure.consumer}, "
        f"{outcome.applied} event(s) of {failure.aggregate} in all",
        highlight=False,
    )
    _report_next_failure(outcome.failed)


def events_skip(
    failure_id: Annotated[int, typer.Argument(help="The id from storekeeper events parked")],
    reason: ReasonOption,
) -> None:
    """Give up on a parked event for its consumer; its later events of the aggregate then flow."""
    reason = _require(reason)
    from storekeeper.accounts import audit
    from storekeeper.events import redelivery
    from storekeeper.events.failures import RetryPolicy

    settings = Settings()
    by = operator()
    with booted(settings) as container, container.db.transaction() as session:
        outcome = redelivery.skip(
            session,
            consumers=container.consumers,
            failure_id=failure_id,
            reason=reason,
            by=by,
            policy=RetryPolicy.from_settings(settings),
        )
        audit.record(
            session,
            "event_skipped",
            operator=by,
            failure_id=failure_id,
            consumer=outcome.failure.consumer,
            event_id=str(outcome.failure.event_id),
            reason=reason,
        )
    failure = outcome.failure
    console.print(
        f"skipped event {failure.position} for {failure.consumer}; "
        f"{outcome.applied} waiting event(s) of {failure.aggregate} delivered",
        highlight=False,
    )
    _report_next_failure(outcome.failed)


def _report_next_failure(failed: Failure | None) -> None:
    if failed is not None:
        console.print(
            f"[yellow]a later event failed[/yellow]: failure {failed.id} (event "
            f"{failed.position}), retried automatically: {failed.last_error}",
            highlight=False,
        )


def jobs_failed() -> None:
    """List jobs that failed for good, newest first."""
    from storekeeper.tasks import failed

    with booted() as container, container.db.reading() as session:
        shown = failed.list_failed(session.connection())
    if not shown:
        console.print("no failed jobs")
        return
    table = Table("id", "job", "attempts", "error", "failed at", title="Failed jobs")
    for job in shown:
        table.add_row(
            str(job.id), job.name, str(job.attempts), _short(job.last_error), _when(job.finished_at)
        )
    console.print(table)


def jobs_retry(
    job_id: Annotated[int, typer.Argument(help="The id from storekeeper jobs failed")],
) -> None:
    """Queue a failed job to run now, with another full round of attempts."""
    _decide_job(job_id, "job_retried", reason=None)
    console.print(f"job {job_id} queued again")


def jobs_discard(
    job_id: Annotated[int, typer.Argument(help="The id from storekeeper jobs failed")],
    reason: ReasonOption,
) -> None:
    """Set a failed job aside for good (its status becomes discarded)."""
    reason = _require(reason)
    _decide_job(job_id, "job_discarded", reason=reason)
    console.print(f"job {job_id} discarded")


def _decide_job(job_id: int, kind: str, *, reason: str | None) -> None:
    from storekeeper.accounts import audit
    from storekeeper.tasks import failed

    by = operator()
    with booted() as container, container.db.transaction() as session:
        connection = session.connection()
        action = failed.retry if kind == "job_retried" else failed.discard
        job = action(connection, job_id=job_id)
        audit.record(
            session,
            kind,
            operator=by,
            job_id=job_id,
            job=job.name,
            last_error=job.last_error[:500],
            reason=reason,
        )
