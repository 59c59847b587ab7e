"""The notifications context's reactions: events in, e-mail jobs out.

Consumers only decide what to send and to whom, inside the event's delivery transaction, and
queue a ``notifications.send_mail`` job; the job renders and sends outside any transaction, is
retried with backoff when the mail server is down, and never holds up a request. Consumers get
the producer's event dataclass, decoded by the registry, never a raw payload.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from typing import Any

import jinja2
from sqlalchemy.orm import Session

from storekeeper.accounts import users as accounts_users
from storekeeper.accounts.events import AccountRegistered, PasswordResetRequested
from storekeeper.notifications.mail import Mailer, render
from storekeeper.ordering.events import OrderCancelled, OrderConfirmed, OrderEvent
from storekeeper.tasks import queue
from storekeeper.tasks.queue import PermanentJobError
from storekeeper.tasks.registry import Registry
from storekeeper.telemetry.events import AlertRaised

CONSUMER = "notifications"
SEND_MAIL = "notifications.send_mail"


def register(registry: Registry) -> None:
    """Subscribe to the events that send e-mail and register the sending job."""
    registry.on(CONSUMER, AccountRegistered, welcome)
    registry.on(CONSUMER, PasswordResetRequested, password_reset_mail)
    registry.on(CONSUMER, OrderConfirmed, order_mail)
    registry.on(CONSUMER, OrderCancelled, order_mail)
    registry.on(CONSUMER, AlertRaised, alert_mail)
    registry.job(SEND_MAIL, send_mail)


def _queue_mail(
    session: Session, template: str, *, to: str, key: str, context: dict[str, Any]
) -> None:
    queue.enqueue(
        session,
        SEND_MAIL,
        {"template": template, "to": to, "key": key, "context": context},
        key=f"mail:{template}:{key}",
    )


def welcome(session: Session, event: AccountRegistered) -> None:
    """Welcome a customer who signed up."""
    context = {"email": event.email}
    _queue_mail(session, "welcome", to=event.email, key=event.aggregate_id, context=context)


def password_reset_mail(session: Session, event: PasswordResetRequested) -> None:
    """Send the single-use reset token to the account's address (one mail per request)."""
    context = {
        "email": event.email,
        "token": event.token,
        "expires_at": event.expires_at,
        "valid_minutes": event.valid_minutes,
    }
    # Keyed by the token's hash: each request is its own mail, and the key names no secret.
    key = hashlib.sha256(event.token.encode()).hexdigest()[:32]
    _queue_mail(session, "password_reset", to=event.email, key=key, context=context)


def order_mail_of(event: OrderEvent) -> tuple[str, dict[str, Any]]:
    """The template and its context that tell a customer what happened to their order."""
    context: dict[str, Any] = {
        "order_id": event.order_id,
        "total_cents": event.total_cents,
        "currency": event.currency,
    }
    if isinstance(event, OrderCancelled):
        return "order_cancelled", {**context, "reason": event.reason}
    return "order_confirmed", context


def order_mail(session: Session, event: OrderEvent) -> None:
    """Tell the customer their order was confirmed or cancelled."""
    template, context = order_mail_of(event)
    to = accounts_users.email_of(session, user_id=uuid.UUID(event.customer_id))
    _queue_mail(session, template, to=to, key=event.order_id, context=context)


def alert_context(event: AlertRaised) -> dict[str, Any]:
    """What the ``alert_raised`` template shows: the event and its range in words."""
    low, high = event.min_temp_c, event.max_temp_c
    return {
        **dataclasses.asdict(event),
        "range_text": f"{'-∞' if low is None else low} to {'+∞' if high is None else high} °C",
    }


def alert_mail(session: Session, event: AlertRaised) -> None:
    """Tell every manager and admin about a cold-chain alert (one mail each)."""
    context = alert_context(event)
    template = "sensor_silent" if event.kind == "sensor.silent" else "alert_raised"
    for to in accounts_users.staff_emails(session):
        key = f"{event.alert_id}:{to}"
        _queue_mail(session, template, to=to, key=key, context=context)


def send_mail(args: dict[str, Any], *, mailer: Mailer) -> None:
    """Render and send one e-mail; a broken template fails for good instead of retrying."""
    try:
        mail = render(args["template"], to=args["to"], key=args["key"], **args["context"])
    except jinja2.TemplateError as exc:
        raise PermanentJobError(f"template {args['template']!r}: {exc}") from exc
    mailer.send(mail)
