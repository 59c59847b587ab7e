"""Telemetry through the HTTP API: sensors, reading batches, series, alerts and their e-mail."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import Container
from tests.conftest import Actor, Actors
from tests.e2e.api_support import API, assert_error
from tests.shop import add_warehouses

T0 = (datetime.now(UTC) - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)


def _sensor(client: TestClient, headers: dict[str, str], sensor: str, warehouse: str) -> Any:
    r = client.post(
        f"{API}/sensors",
        headers=headers,
        json={
            "id": sensor,
            "warehouse": warehouse,
            "room": "chiller",
            "min_temp_c": 2,
            "max_temp_c": 8,
        },
    )
    assert r.status_code == 201, r.text
    return r.json()


def _readings(*points: tuple[str, float, float]) -> dict[str, Any]:
    """Readings (sensor, seconds after T0, temperature)."""
    return {
        "readings": [
            {"sensor": s, "ts": (T0 + timedelta(seconds=at)).isoformat(), "temp_c": t}
            for s, at, t in points
        ]
    }


def test_sensors_are_created_by_managers_and_listed_per_warehouse(
    client: TestClient, actors: Actors, manager: Actor
) -> None:
    add_warehouses(client, manager.headers)
    clerk = actors.make(Role.CLERK, warehouses=["HAM"])
    body = _sensor(client, manager.headers, "ber-1", "BER")
    _sensor(client, manager.headers, "ham-1", "HAM")

    assert body["warehouse"] == "BER"
    assert (body["effective_min_temp_c"], body["effective_max_temp_c"]) == (2, 8)
    assert body["counts"] == {}
    r = client.post(
        f"{API}/sensors",
        headers=manager.headers,
        json={"id": "ber-1", "warehouse": "BER", "room": "x"},
    )
    assert_error(r, 409, "duplicate_sensor")
    r = client.post(
        f"{API}/sensors",
        headers=manager.headers,
        json={"id": "z", "warehouse": "NOPE", "room": "x"},
    )
    assert_error(r, 404, "unknown_warehouse")
    r = client.post(
        f"{API}/sensors",
        headers=manager.headers,
        json={"id": "z", "warehouse": "BER", "room": "x", "min_temp_c": 9, "max_temp_c": 1},
    )
    assert_error(r, 422)
    assert_error(
        client.post(
            f"{API}/sensors",
            headers=clerk.headers,
            json={"id": "c", "warehouse": "HAM", "room": "x"},
        ),
        403,
    )

    all_ids = [s["id"] for s in client.get(f"{API}/sensors", headers=manager.headers).json()]
    clerk_ids = [s["id"] for s in client.get(f"{API}/sensors", headers=clerk.headers).json()]
    assert (all_ids, clerk_ids) == (["ber-1", "ham-1"], ["ham-1"])
    customer = actors.make(Role.CUSTOMER)
    assert_error(client.get(f"{API}/sensors", headers=customer.headers), 403)


def test_a_batch_answers_per_reading_and_counts_outcomes(
    client: TestClient, actors: Actors, manager: Actor
) -> None:
    add_warehouses(client, manager.headers)
    _sensor(client, manager.headers, "ber-1", "BER")
    _sensor(client, manager.headers, "ham-1", "HAM")
    device = actors.make(Role.DEVICE, warehouses=["BER"])
    batch = _readings(("ber-1", 0, 4.0), ("ber-1", 0, 4.0), ("ham-1", 0, 4.0), ("x", 0, 4.0))
    batch["readings"].append(
        {"sensor": "ber-1", "ts": (T0 + timedelta(seconds=5)).isoformat(), "temp_c": 150.0}
    )

    r = client.post(f"{API}/telemetry", headers=device.headers, json=batch)

    assert r.status_code == 200, r.text
    assert r.json() == {
        "results": [
            {"stored": True, "reason": None},
            {"stored": True, "reason": "duplicate"},
            {"stored": False, "reason": "not_allowed"},
            {"stored": False, "reason": "unknown_sensor"},
            {"stored": False, "reason": "impossible_temperature"},
        ],
        "stored": 2,
        "rejected": 3,
    }
    (ber,) = [
        s
        for s in client.get(f"{API}/sensors", headers=manager.headers).json()
        if s["id"] == "ber-1"
    ]
    assert ber["counts"] == {"stored": 1, "duplicate": 1, "impossible_temperature": 1}
    # Staff may send over HTTP; customers and clerks may not send at all.
    r = client.post(f"{API}/telemetry", headers=manager.headers, json=_readings(("ham-1", 1, 5.0)))
    assert r.json()["stored"] == 1
    customer = actors.make(Role.CUSTOMER)
    assert_error(client.post(f"{API}/telemetry", headers=customer.headers, json=batch), 403)
    assert_error(client.post(f"{API}/telemetry", json=batch), 401)
    # Only a malformed body is refused as a whole.
    assert_error(
        client.post(f"{API}/telemetry", headers=device.headers, json={"readings": [{}]}), 422
    )
    too_many = _readings(*[("ber-1", i, 4.0) for i in range(1001)])
    assert_error(client.post(f"{API}/telemetry", headers=device.headers, json=too_many), 422)
    # A metric per transport, outcome and reason.
    metrics_text = client.get("/metrics").text
    assert (
        'storekeeper_telemetry_readings_total{outcome="rejected",reason="not_allowed",transport="http"}'
        in metrics_text
    )


def test_series_are_bucketed_and_bad_parameters_are_clear_422s(
    client: TestClient, actors: Actors, manager: Actor
) -> None:
    add_warehouses(client, manager.headers)
    _sensor(client, manager.headers, "ber-1", "BER")
    points = [("ber-1", m * 60.0 + 10, float(m % 7)) for m in range(120)]
    r = client.post(f"{API}/telemetry", headers=manager.headers, json=_readings(*points))
    assert r.json()["stored"] == 120
    window = {"from": T0.isoformat(), "to": (T0 + timedelta(hours=2)).isoformat()}

    r = client.get(
        f"{API}/telemetry/ber-1", headers=manager.headers, params={**window, "bucket": "1h"}
    )

    assert r.status_code == 200, r.text
    first, second = r.json()
    temps = [float(m % 7) for m in range(120)]
    assert first["start"].startswith(T0.isoformat()[:19])
    assert (first["count"], first["min"], first["max"]) == (60, 0.0, 6.0)
    assert first["avg"] == sum(temps[:60]) / 60
    assert second["avg"] == sum(temps[60:]) / 60
    default = client.get(f"{API}/telemetry/ber-1", headers=manager.headers, params=window).json()
    assert len(default) == 120  # two hours: one-minute buckets by default
    clerk_elsewhere = actors.make(Role.CLERK, warehouses=["HAM"])
    assert_error(client.get(f"{API}/telemetry/ber-1", headers=clerk_elsewhere.headers), 403)
    assert_error(
        client.get(f"{API}/telemetry/nope", headers=manager.headers), 404, "unknown_sensor"
    )
    for params, code in [
        ({**window, "bucket": "30s"}, "bad_bucket"),
        ({**window, "bucket": "1w"}, "bad_bucket"),
        ({"from": window["to"], "to": window["from"]}, "bad_range"),
        (
            {"from": "2000-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z", "bucket": "1m"},
            "too_many_buckets",
        ),
    ]:
        assert_error(
            client.get(f"{API}/telemetry/ber-1", headers=manager.headers, params=params), 422, code
        )
    assert_error(
        client.get(f"{API}/telemetry/ber-1", headers=manager.headers, params={"from": "yesterday"}),
        422,
    )


def _wait_for_mail(directory: Path, count: int) -> list[Any]:
    deadline = time.monotonic() + 30
    while True:
        files = sorted(directory.glob("*.eml")) if directory.exists() else []
        mails = [message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]
        alerts = [m for m in mails if "Cold-chain alert" in str(m["Subject"])]
        if len(alerts) >= count:
            return alerts
        assert time.monotonic() < deadline, f"{len(alerts)} of {count} alert mails arrived"
        time.sleep(0.05)


def test_an_excursion_alerts_managers_by_mail_and_a_manager_acknowledges(
    client: TestClient, container: Container, actors: Actors, manager: Actor
) -> None:
    container.settings.alert_grace_s = 60
    admin = actors.make(Role.ADMIN)
    clerk = actors.make(Role.CLERK, warehouses=["BER"])
    clerk_elsewhere = actors.make(Role.CLERK, warehouses=["HAM"])
    device = actors.make(Role.DEVICE, warehouses=["BER"])
    add_warehouses(client, manager.headers)
    _sensor(client, manager.headers, "ber-1", "BER")

    r = client.post(
        f"{API}/telemetry",
        headers=device.headers,
        json=_readings(("ber-1", 0, 5.0), ("ber-1", 30, 9.0), ("ber-1", 95, 9.5)),
    )
    assert r.json()["stored"] == 3

    (alert,) = client.get(f"{API}/alerts", headers=clerk.headers, params={"status": "open"}).json()
    assert (alert["sensor"], alert["temp_c"], alert["max_temp_c"]) == ("ber-1", 9.5, 8.0)
    assert client.get(f"{API}/alerts", headers=clerk_elsewhere.headers).json() == []
    mails = _wait_for_mail(container.settings.data_dir / "outbox-mail", 2)
    assert sorted(str(m["To"]) for m in mails) == sorted([manager.email, admin.email])
    assert "ber-1" in mails[0].get_body(("plain",)).get_content()

    assert_error(client.post(f"{API}/alerts/{alert['id']}/ack", headers=clerk.headers), 403)
    assert_error(client.post(f"{API}/alerts/{alert['id']}/ack", headers=device.headers), 403)
    first = client.post(f"{API}/alerts/{alert['id']}/ack", headers=manager.headers)
    again = client.post(f"{API}/alerts/{alert['id']}/ack", headers=admin.headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert first.json()["status"] == "acknowledged"
    assert_error(
        client.post(f"{API}/alerts/999999/ack", headers=manager.headers), 404, "unknown_alert"
    )
    assert_error(
        client.get(f"{API}/alerts", headers=manager.headers, params={"status": "bogus"}), 422
    )

    client.post(f"{API}/telemetry", headers=device.headers, json=_readings(("ber-1", 120, 4.0)))
    (cleared,) = client.get(
        f"{API}/alerts", headers=manager.headers, params={"status": "cleared"}
    ).json()
    assert cleared["id"] == alert["id"]
