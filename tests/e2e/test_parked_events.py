"""Poison events against a real server and the real ``storekeeper`` command, on both databases.

The poison is an ``account.registered`` event as a buggy older release might have written it
(no e-mail address): the notifications consumer cannot decode it. The server must go on with
every other event, hold back only that consumer's later events of that account, retry and park
it (through a ``kill -9`` of the server mid-retry), and deliver or skip it when an operator says.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path
from typing import ClassVar

import httpx
from sqlalchemy import func, select, update

from storekeeper.accounts import audit
from storekeeper.accounts.events import AccountRegistered, PasswordResetRequested
from storekeeper.bootstrap import Container
from storekeeper.config import Settings
from storekeeper.events import failures, outbox
from storekeeper.events.failures import Failure
from storekeeper.events.models import InboxRecord, OutboxEvent
from storekeeper.tasks.models import Job
from tests.conftest import LiveServer, env_for, start_server, stop_server
from tests.payment_sim import storekeeper_script


@dataclass(frozen=True)
class OldAccountRegistered:
    """``account.registered`` as a buggy release wrote it: without the e-mail address."""

    type: ClassVar[str] = "account.registered"
    aggregate_type: ClassVar[str] = "account"

    user_id: str

    @property
    def aggregate_id(self) -> str:
        """The user id."""
        return self.user_id


@dataclass(frozen=True)
class Poisoned:
    """The poison event of account X, the later event of X that must wait, and Y's event."""

    user: str
    poison: uuid.UUID
    later: uuid.UUID
    other: uuid.UUID


def _event_id(container: Container, event_type: str, aggregate_id: str) -> uuid.UUID:
    with container.db.reading() as session:
        return session.scalars(
            select(OutboxEvent.event_id)
            .where(OutboxEvent.type == event_type, OutboxEvent.aggregate_id == aggregate_id)
            .order_by(OutboxEvent.id.desc())
        ).first()  # type: ignore[return-value]


def _poison(container: Container) -> Poisoned:
    user, other = str(uuid.uuid4()), str(uuid.uuid4())
    with container.db.transaction() as session:
        outbox.record(session, OldAccountRegistered(user_id=user))
    with container.db.transaction() as session:
        outbox.record(
            session,
            PasswordResetRequested(
                user_id=user,
                email="x@example.com",
                token="t" * 43,
                expires_at="2030-01-01T00:00:00+00:00",
                valid_minutes=30,
            ),
        )
    with container.db.transaction() as session:
        outbox.record(session, AccountRegistered(user_id=other, email="y@example.com"))
    return Poisoned(
        user,
        _event_id(container, "account.registered", user),
        _event_id(container, "account.password_reset_requested", user),
        _event_id(container, "account.registered", other),
    )


def _wait_for(condition: Callable[[], object], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _mails_to(settings: Settings, address: str) -> list[str]:
    """Subjects of the mails sent to ``address``."""
    outbox_dir: Path = settings.data_dir / "outbox-mail"
    found = []
    for path in sorted(outbox_dir.glob("*.eml")) if outbox_dir.exists() else []:
        mail = message_from_bytes(path.read_bytes(), policy=policy.default)
        if mail["To"] == address:
            found.append(str(mail["Subject"]))
    return found


def _failure(container: Container) -> Failure | None:
    with container.db.reading() as session:
        shown = failures.list_open(session.connection(), parked_only=False)
    assert len(shown) <= 1
    return shown[0] if shown else None


def _processed(container: Container, event_id: uuid.UUID) -> bool:
    with container.db.reading() as session:
        return session.get(InboxRecord, ("notifications", event_id)) is not None


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**env_for(settings), "COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [storekeeper_script(), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


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
        events = _poison(container)

        # Y's welcome goes out; X's reset mail waits behind X's poison event.
        _wait_for(lambda: _mails_to(settings, "y@example.com"), "the other account's mail")
        _wait_for(lambda: _failure(container), "the failure record")
        first = _failure(container)
        assert first is not None and first.event_id == events.poison
        assert "TypeError" in first.last_error and first.parked_at is None
        assert not _processed(container, events.later)

        # kill -9 while the event is being retried: the next server carries on from the table.
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        server = start_server(settings, tmp_path / "server.log")
        _wait_for(lambda: getattr(_failure(container), "parked_at", None), "parking")
        parked = _failure(container)
        assert parked is not None and parked.attempts == 3 and parked.id == first.id
        assert not _processed(container, events.later)
        scraped = httpx.get(f"{server.url}/metrics", timeout=10).text.splitlines()
        assert 'storekeeper_events_parked{consumer="notifications"} 1.0' in scraped

        listed = _cli(settings, "events", "parked")
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
        retried = _cli(settings, "events", "retry", str(parked.id))
        assert retried.returncode == 0, retried.stdout + retried.stderr
        assert "2 event(s)" in retried.stdout

        _wait_for(lambda: len(_mails_to(settings, "x@example.com")) == 2, "X's two mails")
        assert _processed(container, events.poison) and _processed(container, events.later)
        assert _failure(container) is None
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
        assert sorted(_mails_to(settings, "x@example.com")) == sorted(
            set(_mails_to(settings, "x@example.com"))
        )
    finally:
        stop_server(server)


def test_skip_lets_the_waiting_events_flow_and_is_audited(
    settings: Settings, container: Container, tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"event_max_attempts": 1})
    server = start_server(settings, tmp_path / "server.log")
    try:
        events = _poison(container)
        _wait_for(lambda: getattr(_failure(container), "parked_at", None), "parking")
        _wait_for(lambda: _mails_to(settings, "y@example.com"), "the other account's mail")
        parked = _failure(container)
        assert parked is not None

        shown = _cli(settings, "events", "status")
        assert shown.returncode == 0, shown.stderr
        assert any(
            "parked for notifications" in line and line.rstrip(" │").endswith("1")
            for line in shown.stdout.splitlines()
        ), shown.stdout

        assert _cli(settings, "events", "skip", str(parked.id), "--reason", " ").returncode == 2
        skipped = _cli(
            settings, "events", "skip", str(parked.id), "--reason", "written by release 1.2"
        )
        assert skipped.returncode == 0, skipped.stdout + skipped.stderr

        _wait_for(lambda: _mails_to(settings, "x@example.com"), "X's reset mail")
        assert len(_mails_to(settings, "x@example.com")) == 1  # the reset, never a welcome
        assert _processed(container, events.poison)  # recorded as processed, by the skip
        with container.db.reading() as session:
            closed = failures.get_or_raise(session.connection(), parked.id)
        assert (closed.resolution, closed.reason) == ("skipped", "written by release 1.2")
        (detail,) = _audit_kinds(container, "event_skipped")
        assert detail["reason"] == "written by release 1.2"
        assert _cli(settings, "events", "skip", str(parked.id), "--reason", "again").returncode == 1
    finally:
        stop_server(server)
