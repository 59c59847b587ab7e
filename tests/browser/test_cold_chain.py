"""The cold-chain pages in a real browser: sensors with their ranges, an alert that appears
live and is acknowledged in place, and a sensor's temperature chart with its table."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from playwright.sync_api import expect

from storekeeper.accounts.domain import Role
from tests.browser.conftest import Console, axe_violations
from tests.conftest import Actors

API = "/api/v1"
SENSOR = "ber-chiller-1"


def _readings(start: datetime, temps: list[float]) -> dict[str, Any]:
    """One reading a minute from ``start``."""
    return {
        "readings": [
            {"sensor": SENSOR, "ts": (start + timedelta(minutes=i)).isoformat(), "temp_c": t}
            for i, t in enumerate(temps)
        ]
    }


def test_an_excursion_raises_an_alert_live_that_a_manager_acknowledges_and_charts(
    console: Console, actors: Actors
) -> None:
    manager = actors.make(Role.MANAGER)
    api = httpx.Client(base_url=console.server.url, headers=manager.headers, timeout=10)
    body = {"code": "BER", "name": "Berlin", "lat": 52.52, "lon": 13.405}
    assert api.post(f"{API}/warehouses", json=body).status_code == 201
    sensor = {"id": SENSOR, "warehouse": "BER", "room": "chiller", "min_temp_c": 2, "max_temp_c": 8}
    assert api.post(f"{API}/sensors", json=sensor).status_code == 201
    start = (datetime.now(UTC) - timedelta(hours=2)).replace(second=0, microsecond=0)
    calm = [4.0 + (i % 5) * 0.4 for i in range(90)]
    assert api.post(f"{API}/telemetry", json=_readings(start, calm)).json()["stored"] == 90
    console.page.add_init_script(
        "document.addEventListener('htmx:sseOpen', () => { window.liveOpen = true; });"
    )
    console.sign_in(manager)
    console.goto("/cold-chain")
    row = console.page.get_by_role("row", name=re.compile(SENSOR))
    expect(row.first).to_contain_text("2.0 to 8.0 °C")
    expect(console.page.get_by_text("No alerts.")).to_be_visible()

    # Seven minutes at 9.5 °C: longer than the 5-minute grace, so an alert is raised.
    console.page.wait_for_function("window.liveOpen === true")
    warm = _readings(start + timedelta(minutes=90), [9.5] * 7)
    assert api.post(f"{API}/telemetry", json=warm).json()["stored"] == 7
    alerts = console.page.get_by_role("region", name="Alerts")
    alert = alerts.get_by_role("row", name=re.compile(SENSOR))
    expect(alert).to_contain_text("open")
    expect(alert).to_contain_text("9.5 °C")
    console.shoot("cold-chain")
    assert axe_violations(console.page) == []

    alert.get_by_role("button", name=re.compile("Acknowledge alert")).click()
    expect(alert).to_contain_text("acknowledged")
    expect(alert).to_contain_text("by you")
    expect(alert.get_by_role("button")).to_have_count(0)
    expect(alert.get_by_role("cell", name="acknowledged")).to_be_focused()
    expect(console.page).to_have_url(console.url("/cold-chain"))

    console.page.get_by_role("link", name=SENSOR).first.click()
    expect(console.page).to_have_url(console.url(f"/cold-chain/sensors/{SENSOR}"))
    expect(console.page.locator("#chart canvas").first).to_be_visible()
    table = console.page.get_by_role("table", name=re.compile("Temperature of sensor"))
    expect(table.get_by_role("row", name=re.compile("9.5 °C")).first).to_contain_text(
        "out of range"
    )
    console.shoot("cold-chain-sensor")
    assert axe_violations(console.page) == []

    console.page.get_by_role("link", name="Last week").click()
    expect(console.page).to_have_url(console.url(f"/cold-chain/sensors/{SENSOR}?range=week"))
    expect(console.page.get_by_role("link", name="Last week")).to_have_attribute(
        "aria-current", "page"
    )
    expect(console.page.locator("#chart canvas").first).to_be_visible()
