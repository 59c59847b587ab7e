"""Fakes for the edges (payment gateway, mailer) and a container wired with them by bootstrap.

The container's database is a SQLite file that the unit tests never open: ``offline_container``
checks that it was not created, so a unit test that touches the database fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from storekeeper.bootstrap import Container, bootstrap
from storekeeper.config import Settings
from storekeeper.notifications.mail import Mail
from storekeeper.payments.gateway import (
    Authorization,
    AuthorizationStatus,
    RefundOutcome,
)


@dataclass
class FakeGateway:
    """A card gateway that answers as told and remembers what it was asked."""

    answer: Authorization | Exception = field(
        default_factory=lambda: Authorization(AuthorizationStatus.AUTHORIZED, "auth-1")
    )
    failure: Exception | None = None
    """Raised by capture and refund when set (``GatewayUnavailable`` or ``GatewayRejected``)."""
    name: str = "card"
    remote: bool = True
    calls: list[tuple[str, str]] = field(default_factory=list)

    def authorize(
        self, *, order_id: str, amount_cents: int, currency: str, token: str
    ) -> Authorization:
        self.calls.append(("authorize", order_id))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def capture(self, *, order_id: str, amount_cents: int) -> None:
        self.calls.append(("capture", order_id))
        if self.failure is not None:
            raise self.failure

    def refund(self, *, order_id: str) -> RefundOutcome:
        self.calls.append(("refund", order_id))
        if self.failure is not None:
            raise self.failure
        return RefundOutcome.REFUNDED

    def close(self) -> None:
        pass


@dataclass
class FakeMailer:
    """Keeps the mail it is asked to send."""

    sent: list[Mail] = field(default_factory=list)

    def send(self, mail: Mail) -> None:
        self.sent.append(mail)


@contextmanager
def offline_container(
    tmp_path: Path, *, gateway: FakeGateway | None = None, mailer: FakeMailer | None = None
) -> Iterator[Container]:
    """A container built by bootstrap with fake edges; fails if anything opened the database."""
    database = tmp_path / "never-opened.db"
    settings = Settings(
        database_url=f"sqlite:///{database}",
        data_dir=tmp_path / "data",
        secret_key="unit-test-secret-unit-test-secret",  # type: ignore[arg-type]
        _env_file=None,  # type: ignore[call-arg]
    )
    container = bootstrap(
        settings,
        mailer=mailer or FakeMailer(),
        gateways={"card": gateway or FakeGateway()},
    )
    try:
        yield container
    finally:
        container.close()
    assert not database.exists(), "a unit test used the database"
