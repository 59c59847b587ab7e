"""E-mails end to end: events in, jobs out, delivered to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import select

from storekeeper.api.app import create_app
from storekeeper.bootstrap import bootstrap
from storekeeper.config import Settings
from storekeeper.tasks.models import Job
from tests.conftest import Actor
from tests.processes import free_port
from tests.shop import add_product, add_warehouses


class Inbox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def smtp_port() -> int:
    """A port for the test's SMTP server (started when the test wants it)."""
    return free_port()


@pytest.fixture
def shop_with_smtp(settings: Settings, smtp_port: int) -> Iterator[TestClient]:
    """The app, sending mail to 127.0.0.1:<smtp_port>."""
    container = bootstrap(settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{smtp_port}"}))
    with TestClient(create_app(container=container), raise_server_exceptions=False) as client:
        yield client


def _wait_for_mail(inbox: Inbox, count: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while len(inbox.messages) < count:
        assert time.monotonic() < deadline, f"{len(inbox.messages)} of {count} mails arrived"
        time.sleep(0.05)


def _order(client: TestClient, customer: Actor, qty: int) -> Any:
    r = client.post(
        "/api/v1/orders",
        json={"lines": [{"sku": "TEA", "qty": qty}]},
        headers={**customer.headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_sign_up_confirmation_and_cancellation_each_send_one_mail(
    shop_with_smtp: TestClient, smtp_port: int, manager: Actor, customer: Actor
) -> None:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        client = shop_with_smtp
        add_warehouses(client, manager.headers)
        add_product(client, manager.headers, "TEA", price_cents=450, stock={"BER": 10})
        r = client.post(
            "/api/v1/auth/register",
            json={"email": "Ada@Example.com", "password": "a-long-enough-password"},
        )
        assert r.status_code == 201, r.text
        order = _order(client, customer, qty=2)
        client.post(f"/api/v1/orders/{order['id']}/cancel", headers=customer.headers)

        _wait_for_mail(inbox, 3)
        time.sleep(0.5)  # nothing more arrives: each event produced one mail
    finally:
        controller.stop()
    by_subject = {m["Subject"]: m for m in inbox.messages}
    assert len(inbox.messages) == 3
    welcome = next(m for s, m in by_subject.items() if "welcome" in s.lower())
    assert welcome["To"] == "ada@example.com"
    confirmed = next(m for s, m in by_subject.items() if "confirmed" in s)
    cancelled = next(m for s, m in by_subject.items() if "cancelled" in s)
    assert confirmed["To"] == cancelled["To"] == customer.email
    assert order["id"] in confirmed["Subject"]
    body = confirmed.get_body(("plain",))
    assert body is not None and "9.00 EUR" in body.get_content()


def test_mail_waits_for_a_mail_server_that_is_down_without_holding_up_the_order(
    shop_with_smtp: TestClient, smtp_port: int, manager: Actor, customer: Actor
) -> None:
    client = shop_with_smtp
    add_warehouses(client, manager.headers)
    add_product(client, manager.headers, "TEA", stock={"BER": 10})
    order = _order(client, customer, qty=1)  # no SMTP server listens yet
    assert order["status"] == "confirmed"
    time.sleep(1.5)  # the mail job fails and backs off

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        _wait_for_mail(inbox, 1)
    finally:
        controller.stop()
    assert order["id"] in inbox.messages[0]["Subject"]
    container = client.app.state.container  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while True:  # the job is marked done just after the server took the mail
        with container.db.reading() as session:
            job = session.scalar(select(Job).where(Job.name == "notifications.send_mail"))
        if (job is not None and job.status == "done") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert job is not None and job.status == "done" and job.attempts >= 2  # it was retried
