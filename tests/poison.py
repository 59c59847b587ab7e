"""A poison event for end-to-end tests: an event the notifications consumer cannot decode, a
later event of the same account that must wait behind it, and another account's event that must
not; plus what the tests look at (mails, failures, the inbox) and the ``storekeeper`` command."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path
from typing import ClassVar

from sqlalchemy import select

from storekeeper.accounts.events import AccountRegistered, PasswordResetRequested
from storekeeper.bootstrap import Container
from storekeeper.config import Settings
from storekeeper.events import failures, outbox
from storekeeper.events.failures import Failure
from storekeeper.events.models import InboxRecord, OutboxEvent
from tests.conftest import env_for
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


def poison(container: Container) -> Poisoned:
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


def mails_to(settings: Settings, address: str) -> list[str]:
    """Subjects of the mails sent to ``address``."""
    outbox_dir: Path = settings.data_dir / "outbox-mail"
    found = []
    for path in sorted(outbox_dir.glob("*.eml")) if outbox_dir.exists() else []:
        mail = message_from_bytes(path.read_bytes(), policy=policy.default)
        if mail["To"] == address:
            found.append(str(mail["Subject"]))
    return found


def open_failure(container: Container) -> Failure | None:
    with container.db.reading() as session:
        shown = failures.list_open(session.connection(), parked_only=False)
    assert len(shown) <= 1
    return shown[0] if shown else None


def processed(container: Container, event_id: uuid.UUID) -> bool:
    with container.db.reading() as session:
        return session.get(InboxRecord, ("notifications", event_id)) is not None


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**env_for(settings), "COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [storekeeper_script(), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def wait_for(condition: Callable[[], object], what: str, timeout_s: float = 60) -> None:
    """Poll ``condition`` until it holds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
