"""Transactional e-mail: render a mail from the package templates and hand it to a mailer.

Jobs call ``render`` and then ``Mailer.send``; ``mailer_from_settings`` picks SMTP or, when no
SMTP server is configured, ``.eml`` files in the data directory.
"""

from __future__ import annotations

import hashlib
import os
import smtplib
import ssl
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from functools import cache
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import jinja2

from storekeeper.config import Settings
from storekeeper.events.retention import Pruned

# ISO 4217 minor-unit exponents that differ from the usual 2.
_EXPONENTS = {
    **dict.fromkeys(["BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG"], 0),
    **dict.fromkeys(["RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"], 0),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
    **dict.fromkeys(["CLF", "UYW"], 4),
}
_URL_FORMS = (
    "smtp://host:port, smtp://user:pass@host:port, smtps://host:port or smtp://…?starttls=1"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Mail:
    """One rendered e-mail, independent of how it is delivered."""

    to: str
    subject: str
    text: str
    html: str | None = None
    message_id: str


class Mailer(Protocol):
    """Delivers mail; raises when it could not, so the job that sends it is retried."""

    def send(self, mail: Mail) -> None:
        """Deliver ``mail`` or raise."""
        ...


def render(template: str, *, to: str, key: str, **context: object) -> Mail:
    """Render ``<template>.subject.txt``, ``<template>.txt`` and, if present, ``<template>.html``.

    ``key`` names the occasion (an event id, say): the same template and key always give the
    same Message-ID, so a job that sends again after a crash repeats the mail, not a new one.
    """
    env = _environment()
    subject = env.get_template(f"{template}.subject.txt").render(context)
    html_name = f"{template}.html"
    try:
        html: str | None = env.get_template(html_name).render(context)
    except jinja2.TemplateNotFound as error:
        if error.name != html_name:  # a missing include is a bug, not an optional part
            raise
        html = None
    return Mail(
        to=to,
        # A header is one line; template authors should not have to care.
        subject=" ".join(subject.split()),
        text=env.get_template(f"{template}.txt").render(context),
        html=html,
        message_id=_message_id(template, key),
    )


class SmtpMailer:
    """Sends through an SMTP server, one connection per mail (mail is rare, jobs are retried)."""

    def __init__(self, url: str, sender: str, timeout_s: float = 10.0) -> None:
        self._server = _parse_smtp_url(url)
        self._sender = sender
        self._timeout_s = timeout_s

    def send(self, mail: Mail) -> None:
        """Deliver ``mail``; connection, TLS, login and refusal errors propagate."""
        message = _message(mail, self._sender)
        with self._connect() as client:
            client.send_message(message)

    def _connect(self) -> smtplib.SMTP:
        server = self._server
        client: smtplib.SMTP
        if server.implicit_tls:
            client = smtplib.SMTP_SSL(
                server.host,
                server.port,
                timeout=self._timeout_s,
                context=ssl.create_default_context(),
            )
        else:
            client = smtplib.SMTP(server.host, server.port, timeout=self._timeout_s)
        try:
            if server.starttls:
                client.starttls(context=ssl.create_default_context())
            if server.username:
                client.login(server.username, server.password)
        except BaseException:
            client.close()
            raise
        return client


class FileMailer:
    """Writes each mail as ``<message id>.eml``: the outbox for machines without SMTP."""

    def __init__(self, directory: Path, sender: str) -> None:
        self._directory = directory
        self._sender = sender

    def send(self, mail: Mail) -> None:
        """Write ``mail`` atomically; a resend with the same Message-ID replaces the file."""
        self._directory.mkdir(parents=True, exist_ok=True)
        data = _message(mail, self._sender).as_bytes(policy=policy.SMTP)
        safe_id = "".join(c if c.isalnum() or c in "@.-_" else "_" for c in mail.message_id)
        target = self._directory / f"{safe_id.strip('_')}.eml"
        # Readers (people, tools watching the directory) must never see half a mail.
        fd, temp = tempfile.mkstemp(dir=self._directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            Path(temp).replace(target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        _fsync_directory(self._directory)


def prune_mail_files(directory: Path, *, before: datetime, dry_run: bool = False) -> Pruned:
    """Delete the ``.eml`` files of ``directory`` written before ``before``: a file there *is*
    the delivered mail (no SMTP), so it is kept as long as the other delivered things."""
    cutoff = before.timestamp()
    pruned = 0
    oldest: float | None = None
    for path in directory.glob("*.eml") if directory.is_dir() else ():
        try:
            written = path.stat().st_mtime
            if written < cutoff:
                if not dry_run:
                    path.unlink()
                pruned += 1
                continue
        except FileNotFoundError:  # another process pruned it first
            continue
        oldest = written if oldest is None else min(oldest, written)
    kept = datetime.fromtimestamp(oldest, UTC) if oldest is not None else None
    return Pruned("mail files", pruned, kept)


def mailer_from_settings(settings: Settings) -> Mailer:
    """SMTP when ``smtp_url`` is set, otherwise ``.eml`` files in ``<data_dir>/outbox-mail``."""
    if settings.smtp_url:
        return SmtpMailer(settings.smtp_url, settings.mail_from)
    return FileMailer(settings.data_dir / "outbox-mail", settings.mail_from)


@cache
def _environment() -> jinja2.Environment:
    # Built on first use, not at import; autoescaping only for .html, text stays text.
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("storekeeper.notifications", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["money"] = _money
    return env


def _money(amount_cents: int, currency: str) -> str:
    """``1999, "EUR"`` → ``19.99 EUR``: integer minor units, exponent per ISO 4217."""
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
        raise TypeError(f"money amounts are integer minor units, got {amount_cents!r}")
    code = currency.upper()
    exponent = _EXPONENTS.get(code, 2)
    sign = "-" if amount_cents < 0 else ""
    whole, fraction = divmod(abs(amount_cents), 10**exponent)
    digits = f"{whole}.{fraction:0{exponent}d}" if exponent else str(whole)
    return f"{sign}{digits} {code}"


def _message_id(template: str, key: str) -> str:
    # The template is part of the hash so one key (an order id) can serve several mails.
    digest = hashlib.sha256(f"{template}\0{key}".encode()).hexdigest()
    return f"<{digest[:32]}@storekeeper>"


def _message(mail: Mail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = mail.message_id
    # RFC 3834: tells vacation responders not to answer a machine.
    message["Auto-Submitted"] = "auto-generated"
    # Quoted-printable keeps the mail 7-bit clean for servers without 8BITMIME.
    message.set_content(mail.text, cte="quoted-printable")
    if mail.html is not None:
        message.add_alternative(mail.html, subtype="html", cte="quoted-printable")
    return message


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself survive a power cut, not only the file's bytes.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class _SmtpServer:
    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    username: str
    password: str


def _parse_smtp_url(url: str) -> _SmtpServer:
    # The URL may hold a password, so errors name the faulty part, never the whole URL.
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError(f"SMTP URL scheme {parts.scheme!r} is not supported; use {_URL_FORMS}")
    if not parts.hostname:
        raise ValueError(f"SMTP URL has no host; use {_URL_FORMS}")
    try:
        port = parts.port
    except ValueError as error:
        raise ValueError(f"SMTP URL has an invalid port ({error}); use {_URL_FORMS}") from error
    query = parse_qs(parts.query, keep_blank_values=True)
    if set(query) - {"starttls"}:
        raise ValueError(f"SMTP URL allows only the option starttls=1; use {_URL_FORMS}")
    starttls_values = query.get("starttls", ["0"])
    if starttls_values not in (["0"], ["1"]):
        raise ValueError("SMTP URL option starttls must be 0 or 1")
    implicit_tls = parts.scheme == "smtps"
    starttls = starttls_values == ["1"]
    if implicit_tls and starttls:
        raise ValueError("SMTP URL: smtps:// is TLS already; drop ?starttls=1 or use smtp://")
    return _SmtpServer(
        host=parts.hostname,
        port=port or (465 if implicit_tls else 25),
        implicit_tls=implicit_tls,
        starttls=starttls,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
    )
