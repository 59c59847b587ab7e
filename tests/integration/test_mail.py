"""Mail rendering and delivery, against a real SMTP server (aiosmtpd) and a real directory."""

from __future__ import annotations

import email
import smtplib
import socket
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import jinja2
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword

from storekeeper.config import Settings
from storekeeper.notifications.mail import (
    FileMailer,
    Mail,
    SmtpMailer,
    mailer_from_settings,
    render,
)
from tests.processes import free_port

SENDER = "Storekeeper <shop@example.com>"
USER, PASSWORD = "mailer", "p@ss:word"


class _Inbox:
    """An aiosmtpd handler that keeps what it receives and checks logins."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        ok = auth_data.login.decode() == USER and auth_data.password.decode() == PASSWORD
        if ok:
            self.logins.append(auth_data.login.decode())
        # handled=False: aiosmtpd then answers 235 or 535 itself.
        return AuthResult(success=ok, handled=False)

    def messages(self) -> list[EmailMessage]:
        parsed = [
            email.message_from_bytes(e.original_content or b"", policy=policy.default)
            for e in self.envelopes
        ]
        return [m for m in parsed if isinstance(m, EmailMessage)]


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, _Inbox]]:
    """A real SMTP server on a free loopback port that accepts AUTH without TLS."""
    inbox = _Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=inbox.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    yield f"127.0.0.1:{controller.port}", inbox
    controller.stop()


def _confirmed(total_cents: int = 1999, currency: str = "EUR", **extra: object) -> Mail:
    return render(
        "order_confirmed",
        to="ada@example.com",
        key="event-1",
        order_id="ord-42",
        total_cents=total_cents,
        currency=currency,
        **extra,
    )


def _plain_and_html(message: EmailMessage) -> tuple[str, str]:
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert isinstance(plain, EmailMessage)
    assert isinstance(html, EmailMessage)
    return plain.get_content(), html.get_content()


def test_welcome_greets_by_name_or_falls_back_to_the_address() -> None:
    named = render("welcome", to="ada@example.com", key="u1", email="ada@example.com", name="Ada")
    anonymous = render("welcome", to="bob@example.com", key="u2", email="bob@example.com")

    assert named.subject == "Welcome to Storekeeper"
    assert "Hello Ada," in named.text
    assert named.html is not None and "Hello Ada," in named.html
    assert "Hello bob@example.com," in anonymous.text


@pytest.mark.parametrize(
    ("total_cents", "currency", "shown"),
    [(1999, "EUR", "19.99 EUR"), (500, "JPY", "500 JPY"), (1234, "KWD", "1.234 KWD")],
)
def test_order_confirmed_shows_the_total_in_the_currency_minor_units(
    total_cents: int, currency: str, shown: str
) -> None:
    mail = _confirmed(total_cents, currency)

    assert mail.to == "ada@example.com"
    assert mail.subject == "Your order ord-42 is confirmed"
    assert f"Total: {shown}" in mail.text
    assert mail.html is not None and shown in mail.html


def test_order_confirmed_lists_lines_when_given() -> None:
    lines = [{"sku": "TEA-1", "qty": 3, "unit_price_cents": 450}]

    mail = _confirmed(1350, "EUR", lines=lines)

    assert "3 \N{MULTIPLICATION SIGN} TEA-1: 13.50 EUR" in mail.text
    assert mail.html is not None and "TEA-1" in mail.html


def test_order_cancelled_gives_the_reason_and_escapes_it_in_html() -> None:
    mail = render(
        "order_cancelled",
        to="ada@example.com",
        key="event-2",
        order_id="ord-42",
        total_cents=1999,
        currency="EUR",
        reason="<script>alert(1)</script>",
    )

    assert mail.subject == "Your order ord-42 was cancelled"
    assert "19.99 EUR" in mail.text
    assert "Reason: <script>alert(1)</script>" in mail.text
    assert mail.html is not None
    assert "<script>" not in mail.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in mail.html


def test_a_missing_template_variable_is_an_error_not_a_blank() -> None:
    with pytest.raises(jinja2.UndefinedError, match="currency"):
        render("order_confirmed", to="ada@example.com", key="k", order_id="o", total_cents=1)


def test_message_id_depends_only_on_template_and_key() -> None:
    first = _confirmed()
    again = _confirmed(total_cents=2500)
    other_key = render(
        "order_confirmed",
        to="ada@example.com",
        key="event-9",
        order_id="ord-42",
        total_cents=1999,
        currency="EUR",
    )
    other_template = render("welcome", to="ada@example.com", key="event-1", email="a@b.c")

    assert first.message_id == again.message_id
    assert first.message_id.startswith("<") and first.message_id.endswith("@storekeeper>")
    assert len({first.message_id, other_key.message_id, other_template.message_id}) == 3


def test_smtp_delivers_text_and_html_with_headers(smtp_server: tuple[str, _Inbox]) -> None:
    address, inbox = smtp_server
    mail = _confirmed()

    SmtpMailer(f"smtp://{address}", SENDER).send(mail)

    [envelope] = inbox.envelopes
    assert envelope.mail_from == "shop@example.com"
    assert envelope.rcpt_tos == ["ada@example.com"]
    [message] = inbox.messages()
    assert message["From"] == SENDER
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == "Your order ord-42 is confirmed"
    assert message["Message-ID"] == mail.message_id
    assert message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    plain, html = _plain_and_html(message)
    assert "Total: 19.99 EUR" in plain
    assert "<strong>19.99 EUR</strong>" in html


def test_smtp_logs_in_with_percent_encoded_credentials(smtp_server: tuple[str, _Inbox]) -> None:
    address, inbox = smtp_server

    SmtpMailer(f"smtp://{USER}:p%40ss%3Aword@{address}", SENDER).send(_confirmed())

    assert inbox.logins == [USER]
    assert len(inbox.envelopes) == 1


def test_smtp_rejected_login_raises(smtp_server: tuple[str, _Inbox]) -> None:
    address, inbox = smtp_server

    with pytest.raises(smtplib.SMTPAuthenticationError):
        SmtpMailer(f"smtp://{USER}:wrong@{address}", SENDER).send(_confirmed())
    assert inbox.envelopes == []


def test_smtp_server_down_raises_instead_of_dropping_the_mail() -> None:
    # A bound socket that never listens: connecting to it is refused, and no one else can
    # take the port while the test holds it.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        mailer = SmtpMailer(f"smtp://127.0.0.1:{port}", SENDER, timeout_s=2)
        with pytest.raises((OSError, smtplib.SMTPException)):
            mailer.send(_confirmed())


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://mail.example.com:25", "scheme"),
        ("smtp://", "no host"),
        ("smtp://mail.example.com:notaport", "port"),
        ("smtp://mail.example.com:25?startls=1", "option"),
        ("smtp://mail.example.com:25?starttls=yes", "0 or 1"),
        ("smtps://mail.example.com:465?starttls=1", "TLS already"),
    ],
)
def test_bad_smtp_url_is_rejected_with_a_clear_message(url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        SmtpMailer(url, SENDER)


def test_file_mailer_writes_a_parseable_eml(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox-mail"
    mail = _confirmed()

    FileMailer(outbox, SENDER).send(mail)

    [path] = outbox.iterdir()
    assert path.suffix == ".eml"
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert message["Message-ID"] == mail.message_id
    assert message["From"] == SENDER
    assert message["Subject"] == mail.subject
    plain, html = _plain_and_html(message)
    assert "Total: 19.99 EUR" in plain
    assert "19.99 EUR" in html


def test_file_mailer_resend_with_the_same_key_leaves_one_file(tmp_path: Path) -> None:
    mailer = FileMailer(tmp_path, SENDER)

    mailer.send(_confirmed())
    mailer.send(_confirmed())
    mailer.send(render("welcome", to="ada@example.com", key="event-1", email="a@b.c"))

    assert len(list(tmp_path.iterdir())) == 2


def test_mailer_from_settings_uses_smtp_when_configured(
    smtp_server: tuple[str, _Inbox], tmp_path: Path
) -> None:
    address, inbox = smtp_server
    settings = Settings(
        smtp_url=f"smtp://{address}",
        mail_from=SENDER,
        data_dir=tmp_path,
        _env_file=None,  # type: ignore[call-arg]
    )

    mailer = mailer_from_settings(settings)
    mailer.send(_confirmed())

    assert isinstance(mailer, SmtpMailer)
    assert len(inbox.envelopes) == 1
    assert not (tmp_path / "outbox-mail").exists()


def test_mailer_from_settings_falls_back_to_files_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(smtp_url="", data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]

    mailer = mailer_from_settings(settings)
    mailer.send(_confirmed())

    assert isinstance(mailer, FileMailer)
    assert len(list((tmp_path / "outbox-mail").glob("*.eml"))) == 1
