"""The notifications context's reactions: events in, e-mail jobs out.

Consumers only decide what to send and to whom, inside the event's delivery transaction, and
queue a ``notifications.send_mail`` job; the job renders and sends outside any transaction, is
retried with backoff when the mail server is down, and never holds up a request.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import jinja2
from sqlalchemy.orm import Session

from storekeeper.accounts import users as accounts_users
from storekeeper.events.relay import Envelope
from storekeeper.notifications.mail import render
from storekeeper.tasks import queue
from storekeeper.tasks.queue import PermanentJobError

if TYPE_CHECKING:
    from storekeeper.bootstrap import Container

CONSUMER = "notifications"
SEND_MAIL = "notifications.send_mail"


def register(container: Container) -> None:
    """Subscribe to the events that send e-mail and register the sending job."""
    container.consumers.subscribe(CONSUMER, "account.registered", _welcome)
    container.consumers.subscribe(CONSUMER, "order.confirmed", _order_mail("order_confirmed"))
    container.consumers.subscribe(CONSUMER, "order.cancelled", _order_mail("order_cancelled"))
    container.consumers.subscribe(CONSUMER, "alert.raised", _alert_mail)
    container.jobs.register(SEND_MAIL, send_mail)


def _queue_mail(
    session: Session, template: str, *, to: str, key: str, context: dict[str, Any]
) -> None:
    queue.enqueue(
        session,
        SEND_MAIL,
        {"template": template, "to": to, "key": key, "context": context},
        key=f"mail:{template}:{key}",
    )


def _welcome(session: Session, event: Envelope) -> None:
    email = event.payload["email"]
    _queue_mail(session, "welcome", to=email, key=event.aggregate_id, context={"email": email})


def _order_mail(template: str) -> Any:
    def handle(session: Session, event: Envelope) -> None:
        payload = event.payload
        customer = uuid.UUID(payload["customer_id"])
        context = {
            "order_id": payload["order_id"],
            "total_cents": payload["total_cents"],
            "currency": payload["currency"],
        }
        if template == "order_cancelled":
            context["reason"] = payload.get("reason", "")
        to = accounts_users.email_of(session, user_id=customer)
        _queue_mail(session, template, to=to, key=payload["order_id"], context=context)

    return handle


def _alert_mail(session: Session, event: Envelope) -> None:
    """Tell every manager and admin about a cold-chain alert (one mail each)."""
    payload = event.payload
    low, high = payload["min_temp_c"], payload["max_temp_c"]
    context = {
        **payload,
        "range_text": f"{'-∞' if low is None else low} to {'+∞' if high is None else high} °C",
    }
    for to in accounts_users.staff_emails(session):
        key = f"{payload['alert_id']}:{to}"
        _queue_mail(session, "alert_raised", to=to, key=key, context=context)


def send_mail(container: Container, args: dict[str, Any]) -> None:
    """Render and send one e-mail; a broken template fails for good instead of retrying."""
    try:
        mail = render(args["template"], to=args["to"], key=args["key"], **args["context"])
    except jinja2.TemplateError as exc:
        raise PermanentJobError(f"template {args['template']!r}: {exc}") from exc
    container.mailer.send(mail)
