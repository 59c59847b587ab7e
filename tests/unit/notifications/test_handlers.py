"""What notifications sends for which event, and the mail job with a fake mailer: no database."""

from __future__ import annotations

from pathlib import Path

import pytest

from storekeeper.notifications import handlers
from storekeeper.ordering.events import OrderCancelled, OrderConfirmed
from storekeeper.tasks.queue import PermanentJobError
from storekeeper.telemetry.events import AlertRaised
from tests.unit.fakes import FakeMailer, offline_container

_ORDER = {"order_id": "o-1", "customer_id": "c-1", "total_cents": 1999, "currency": "EUR"}


def test_a_confirmed_order_gets_the_confirmation_template() -> None:
    event = OrderConfirmed(status="confirmed", **_ORDER)
    template, context = handlers.order_mail_of(event)
    assert template == "order_confirmed"
    assert context == {"order_id": "o-1", "total_cents": 1999, "currency": "EUR"}


def test_a_cancelled_order_gets_the_cancellation_template_with_its_reason() -> None:
    event = OrderCancelled(status="cancelled", reason="payment declined", **_ORDER)
    template, context = handlers.order_mail_of(event)
    assert (template, context["reason"]) == ("order_cancelled", "payment declined")


def test_an_alert_mail_says_an_open_bound_in_words() -> None:
    event = AlertRaised(
        alert_id=7,
        sensor="s-1",
        warehouse="BER",
        room="cold",
        min_temp_c=None,
        max_temp_c=8.0,
        temp_c=11.5,
        started_at="2026-12-03T09:00:00+00:00",
    )
    context = handlers.alert_context(event)
    assert context["range_text"] == "-∞ to 8.0 °C"
    assert context["sensor"] == "s-1"


def test_an_alert_mail_does_not_claim_the_alert_is_still_open() -> None:
    # The mail is rendered after the raise, by which time the alert may have cleared.
    from storekeeper.notifications.mail import render

    event = AlertRaised(
        alert_id=7,
        sensor="s-1",
        warehouse="BER",
        room="cold",
        min_temp_c=2.0,
        max_temp_c=8.0,
        temp_c=11.5,
        started_at="2026-12-03T09:00:00+00:00",
    )
    mail = render("alert_raised", to="m@example.com", key="7", **handlers.alert_context(event))
    for text in (mail.text, mail.html or ""):
        assert "stays open" not in text
        assert "may" in text and "cleared it since" in text


def test_bootstrap_subscribes_notifications_to_the_events_that_send_mail(tmp_path: Path) -> None:
    with offline_container(tmp_path) as container:
        subscribed = set(container.consumers.handlers(handlers.CONSUMER))
    assert subscribed == {
        "account.registered",
        "account.password_reset_requested",
        "order.confirmed",
        "order.cancelled",
        "alert.raised",
    }


def test_the_mail_job_renders_and_sends_through_the_bound_mailer(tmp_path: Path) -> None:
    mailer = FakeMailer()
    with offline_container(tmp_path, mailer=mailer) as container:
        send = container.jobs.get(handlers.SEND_MAIL)
        assert send is not None
        send(
            {
                "template": "order_cancelled",
                "to": "ann@example.com",
                "key": "o-1",
                "context": {**_ORDER, "reason": "out of stock"},
            }
        )
    [mail] = mailer.sent
    assert mail.to == "ann@example.com"
    assert "o-1" in mail.subject and "out of stock" in mail.text


def test_a_broken_template_fails_for_good_instead_of_retrying(tmp_path: Path) -> None:
    mailer = FakeMailer()
    with offline_container(tmp_path, mailer=mailer) as container:
        send = container.jobs.get(handlers.SEND_MAIL)
        assert send is not None
        with pytest.raises(PermanentJobError):
            send({"template": "no_such_template", "to": "a@b.c", "key": "k", "context": {}})
    assert mailer.sent == []
