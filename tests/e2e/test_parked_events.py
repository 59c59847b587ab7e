"""Poison events and failed jobs against a real server and the real ``storekeeper`` command, on
both databases.

The poison is an ``account.registered`` event as a buggy older release might have written it
(no e-mail address): the notifications consumer cannot decode it. The server must go on with
every other event, hold back only that consumer's later events of that account, retry and park
it (through a ``kill -9`` of the server mid-retry), and deliver or skip it when an operator says.
A job that failed for good is listed, retried and discarded the same way.
"""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
from sqlalchemy import func, select, update

from storekeeper.accounts import audit
from storekeeper.bootstrap import Container
from storekeeper.config import Settings
from storekeeper.events import failures
from storekeeper.events.models import InboxRecord, OutboxEvent
from storekeeper.tasks import queue
from storekeeper.tasks.models import Job
from tests.conftest import LiveServer, start_server, stop_server
from tests.poison import mails_to, open_failure, poison, processed, run_cli, wait_for


def _audit_kinds(container: Container, kind: str) -> list[dict[str, object]]:
    with container.db.reading() as session:
        rows = audit.list_(session, kind=kind, user_id=None, before=None, limit=10)
        return [dict(row.detail) for row in rows]


def test_a_poison_event_is_parked_through_a_crash_and_delivered_by_retry_after_the_fix(
    settings: Settings, container: Container, tmp_path: Path
) -> None:
    settings = settings.model_copy(
        update={
            "event_max_attempts": 3,
            "event_retry_base_s": 2.0,
            "lease_s": 3.0,
            "job_lease_s": 3.0,
        }
    )
    server: LiveServer = start_server(settings, tmp_path / "server.log")
    try:
        events = poison(container)

        # Y's welcome goes out; X's reset mail waits behind X's poison event.
        wait_for(lambda: mails_to(settings, "y@example.com"), "the other account's mail")
        wait_for(lambda: open_failure(container), "the failure record")
        first = open_failure(container)
        assert first is not None and first.event_id == events.poison
        assert "TypeError" in first.last_error and first.parked_at is None
        assert not processed(container, events.later)

        # kill -9 while the event is being retried: the next server carries on from the table.
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        server = start_server(settings, tmp_path / "server.log")
        wait_for(lambda: getattr(open_failure(container), "parked_at", None), "parking")
        parked = open_failure(container)
        assert parked is not None and parked.attempts == 3 and parked.id == first.id
        assert not processed(container, events.later)
        scraped = httpx.get(f"{server.url}/metrics", timeout=10).text.splitlines()
        assert 'storekeeper_events_parked{consumer="notifications"} 1.0' in scraped

        listed = run_cli(settings, "events", "parked")
        assert listed.returncode == 0, listed.stderr
        row = next(line for line in listed.stdout.splitlines() if f" {parked.id} " in line)
        for text in ("notifications", "account.registered", f"account/{events.user}"[:30]):
            assert text in row, listed.stdout
        assert "TypeError" in listed.stdout

        # The fix: the operator repairs the event's payload; then retry.
        with container.db.transaction() as session:
            session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.event_id == events.poison)
                .values(payload={"user_id": events.user, "email": "x@example.com"})
            )
        retried = run_cli(settings, "events", "retry", str(parked.id))
        assert retried.returncode == 0, retried.stdout + retried.stderr
        assert "2 event(s)" in retried.stdout

        wait_for(lambda: len(mails_to(settings, "x@example.com")) == 2, "X's two mails")
        assert processed(container, events.poison) and processed(container, events.later)
        assert open_failure(container) is None
        (detail,) = _audit_kinds(container, "event_retried")
        assert detail["failure_id"] == parked.id and detail["delivered"] is True
        # Applied once each: one inbox row per event, one mail job per mail.
        with container.db.reading() as session:
            inbox = session.scalar(
                select(func.count())
                .select_from(InboxRecord)
                .where(InboxRecord.consumer == "notifications")
            )
            mail_jobs = session.scalar(
                select(func.count()).select_from(Job).where(Job.name == "notifications.send_mail")
            )
        assert (inbox, mail_jobs) == (3, 3)
        assert sorted(mails_to(settings, "x@example.com")) == sorted(
            set(mails_to(settings, "x@example.com"))
        )
    finally:
        stop_server(server)


def test_skip_lets_the_waiting_events_flow_and_is_audited(
    settings: Settings, container: Container, tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"event_max_attempts": 1})
    server = start_server(settings, tmp_path / "server.log")
    try:
        events = poison(container)
        wait_for(lambda: getattr(open_failure(container), "parked_at", None), "parking")
        wait_for(lambda: mails_to(settings, "y@example.com"), "the other account's mail")
        parked = open_failure(container)
        assert parked is not None

        shown = run_cli(settings, "events", "status")
        assert shown.returncode == 0, shown.stderr
        assert any(
            "parked for notifications" in line and line.rstrip(" │").endswith("1")
            for line in shown.stdout.splitlines()
        ), shown.stdout

        assert run_cli(settings, "events", "skip", str(parked.id), "--reason", " ").returncode == 2
        skipped = run_cli(
            settings, "events", "skip", str(parked.id), "--reason", "written by release 1.2"
        )
        assert skipped.returncode == 0, skipped.stdout + skipped.stderr

        wait_for(lambda: mails_to(settings, "x@example.com"), "X's reset mail")
        assert len(mails_to(settings, "x@example.com")) == 1  # the reset, never a welcome
        assert processed(container, events.poison)  # recorded as processed, by the skip
        with container.db.reading() as session:
            closed = failures.get_or_raise(session.connection(), parked.id)
        assert (closed.resolution, closed.reason) == ("skipped", "written by release 1.2")
        (detail,) = _audit_kinds(container, "event_skipped")
        assert detail["reason"] == "written by release 1.2"
        assert (
            run_cli(settings, "events", "skip", str(parked.id), "--reason", "again").returncode == 1
        )
    finally:
        stop_server(server)


def test_failed_jobs_are_listed_retried_and_discarded(
    settings: Settings, container: Container
) -> None:
    with container.db.transaction() as session:
        queue.enqueue(session, "reports.gone", {"report": 7})  # no such job any more

    def run_it() -> None:
        job = queue.claim_next(container.db, lease_s=60)
        assert job is not None
        assert not queue.run(job, db=container.db, jobs=queue.JobRegistry())

    def job_row() -> Job:
        with container.db.reading() as session:
            (job,) = session.scalars(select(Job)).all()
            return job

    run_it()
    failed = job_row()
    assert failed.status == "failed"

    listed = run_cli(settings, "jobs", "failed")
    assert listed.returncode == 0, listed.stderr
    assert f"{failed.id} " in listed.stdout and "reports.gone" in listed.stdout
    assert "PermanentJobError" in listed.stdout

    assert run_cli(settings, "jobs", "retry", str(failed.id)).returncode == 0
    queued = job_row()
    assert (queued.status, queued.attempts, queued.max_attempts) == (
        "queued",
        1,
        1 + failed.max_attempts,
    )
    refused = run_cli(settings, "jobs", "retry", str(failed.id))
    assert refused.returncode == 1 and "not failed" in refused.stdout

    run_it()  # still no such job: failed again
    assert run_cli(settings, "jobs", "discard", str(failed.id), "--reason", " ").returncode == 2
    discarded = run_cli(settings, "jobs", "discard", str(failed.id), "--reason", "report retired")
    assert discarded.returncode == 0, discarded.stdout + discarded.stderr
    assert job_row().status == "discarded"
    assert "no failed jobs" in run_cli(settings, "jobs", "failed").stdout
    assert run_cli(settings, "jobs", "retry", "999999").returncode == 1

    (retried,) = _audit_kinds(container, "job_retried")
    (dropped,) = _audit_kinds(container, "job_discarded")
    assert retried["job_id"] == dropped["job_id"] == failed.id
    assert dropped["reason"] == "report retired" and str(retried["operator"]).count("@") == 1
