"""A monitored sensor that stops reporting raises ``sensor.silent``; its next reading clears it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from storekeeper.bootstrap import Container
from storekeeper.notifications import handlers as notifications
from storekeeper.notifications.mail import render
from storekeeper.telemetry import handlers
from storekeeper.telemetry.events import AlertRaised
from tests.conftest import Actor
from tests.console_support import sign_in
from tests.e2e.api_support import API
from tests.integration.telemetry.support import add_sensors, device, reading
from tests.integration.telemetry.test_alerts import _alerts, _events

SILENT_S = 900
LAST = (datetime.now(UTC) - timedelta(seconds=SILENT_S + 120)).replace(microsecond=0)


def _send(container: Container, sensor: str, ts: datetime, temp_c: float = 4.0) -> None:
    container.ingest(device(), [reading(sensor, ts, temp_c)], transport="mqtt")


def _sweep(container: Container) -> None:
    handlers.sweep_silent(db=container.db, settings=container.settings)


def test_a_quiet_monitored_sensor_raises_one_silent_alert_that_its_next_reading_clears(
    container: Container, client: TestClient, manager: Actor
) -> None:
    container.settings.sensor_silent_s = SILENT_S
    add_sensors(container, "cold", "open-room", min_temp_c=2.0, max_temp_c=8.0)
    add_sensors(container, "unranged", "never", room="hall", min_temp_c=None, max_temp_c=None)
    _send(container, "cold", LAST)
    _send(container, "unranged", LAST)
    _send(container, "open-room", datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5))

    _sweep(container)
    _sweep(container)  # a second pass raises nothing more

    # Only the monitored sensor quiet for too long: not the one that just spoke, not the one
    # with no range to keep, not the one that never reported (not installed yet).
    (silent,) = _alerts(container)
    assert (silent.sensor_id, silent.kind, silent.status, silent.temp_c) == (
        "cold",
        "sensor.silent",
        "open",
        None,
    )
    assert silent.started_at == LAST
    (event,) = _events(container, "alert.raised")
    assert event["kind"] == "sensor.silent" and event["temp_c"] is None
    shown = client.get(f"{API}/alerts", headers=manager.headers).json()
    assert [(a["kind"], a["temp_c"]) for a in shown] == [("sensor.silent", None)]
    # The console says "silent" where a temperature would be: on the dashboard and the alerts.
    browser = sign_in(client.app, manager)  # type: ignore[arg-type]
    for page in ("/", "/cold-chain"):
        answer = browser.get(page)
        assert answer.status_code == 200 and "silent" in answer.text, page

    back = datetime.now(UTC).replace(microsecond=0)
    _send(container, "cold", back, temp_c=5.5)

    (cleared,) = _alerts(container)
    assert (cleared.status, cleared.cleared_at) == ("cleared", back)
    (clear_event,) = _events(container, "alert.cleared")
    assert clear_event["kind"] == "sensor.silent" and clear_event["temp_c"] == 5.5
    # Heard from just now: the next sweep leaves it alone.
    _sweep(container)
    assert len(_alerts(container)) == 1


def test_the_silent_alert_mail_says_the_sensor_is_silent_not_a_temperature() -> None:
    event = AlertRaised(
        alert_id=7,
        sensor="cold",
        warehouse="BER",
        room="cold-1",
        min_temp_c=2.0,
        max_temp_c=8.0,
        temp_c=None,
        started_at=LAST.isoformat(),
        kind="sensor.silent",
    )
    mail = render(
        "sensor_silent", to="m@example.com", key="7", **notifications.alert_context(event)
    )
    assert "is silent" in mail.subject and "no reading since" in mail.text
    assert "None" not in mail.text and "None" not in mail.subject
