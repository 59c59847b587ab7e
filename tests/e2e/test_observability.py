"""Metrics, request ids and readiness through the HTTP API (in-process app, both backends)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from storekeeper import migrations
from storekeeper.api.app import create_app
from storekeeper.bootstrap import bootstrap
from storekeeper.config import Settings
from storekeeper.tasks import queue
from tests.conftest import Actor
from tests.shop import add_product, add_warehouses

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient, **headers: str) -> Samples:
    """Every sample ``/metrics`` shows, keyed by name and labels."""
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return parse(r.text)


def parse(text: str) -> Samples:
    """Prometheus text format into samples keyed by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, metric: str, /, **labels: str) -> float:
    """One sample's value, 0 when absent."""
    return samples.get((metric, frozenset(labels.items())), 0.0)


def test_requests_are_counted_by_route_template_never_by_raw_path(client: TestClient) -> None:
    sku = f"NO-SUCH-{uuid.uuid4().hex[:8]}"
    before = scrape(client)
    for _ in range(3):
        assert client.get(f"/api/v1/products/{sku}").status_code in (401, 404)
    status = str(client.get(f"/api/v1/products/{sku}").status_code)
    assert client.get(f"/nothing/here/{sku}").status_code == 404
    text = client.get("/metrics").text
    after = parse(text)

    route = {"route": "/api/v1/products/{sku}", "method": "GET", "status": status}
    requests = "storekeeper_http_requests_total"
    assert value(after, requests, **route) - value(before, requests, **route) == 4
    unmatched = {"route": "<unmatched>", "method": "GET", "status": "404"}
    assert value(after, requests, **unmatched) - value(before, requests, **unmatched) == 1
    latency = "storekeeper_http_request_duration_seconds_count"
    timed = {"route": "/api/v1/products/{sku}", "method": "GET"}
    assert value(after, latency, **timed) - value(before, latency, **timed) == 4
    assert sku not in text  # raw paths would make one time series per SKU


def test_orders_and_stock_movements_are_counted_once_committed_and_read_from_the_database(
    client: TestClient, manager: Actor, customer: Actor
) -> None:
    before = scrape(client)
    add_warehouses(client, manager.headers)
    add_product(client, manager.headers, "MILK", stock={"BER": 5})
    r = client.post(
        "/api/v1/orders",
        json={"lines": [{"sku": "MILK", "qty": 2}]},
        headers={**customer.headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text
    refused = client.post(
        "/api/v1/orders",
        json={"lines": [{"sku": "MILK", "qty": 50}]},
        headers={**customer.headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert refused.status_code == 409  # rolled back: counted nowhere
    after = scrape(client)
    with TestClient(create_app(container=client.app.state.container)) as fresh:  # type: ignore[attr-defined]
        gauges = scrape(fresh)  # the first app's database gauges are cached for a few seconds

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("storekeeper_orders_total", status="confirmed") == 1
    assert delta("storekeeper_orders_total", status="cancelled") == 0
    assert delta("storekeeper_reservations_total", outcome="reserved") == 1
    assert delta("storekeeper_stock_movements_total", reason="receipt") == 1
    # Gauges read from this test's own database: exact values, not deltas.
    assert value(gauges, "storekeeper_orders_by_status", status="confirmed") == 1
    assert value(gauges, "storekeeper_metrics_database_ok") == 1
    assert ("storekeeper_outbox_lag_events", frozenset()) in gauges


def test_queued_jobs_are_shown_by_name(client: TestClient, settings: Settings) -> None:
    # A fresh app: its database gauges are not cached yet.
    container = client.app.state.container  # type: ignore[attr-defined]
    with container.db.transaction() as session:
        for n in range(2):
            queue.enqueue(session, "observability.test_job", {"n": n}, delay_s=3600)
    with TestClient(create_app(container=container)) as fresh:
        samples = scrape(fresh)
    assert value(samples, "storekeeper_jobs_queued", name="observability.test_job") == 2
    # Besides the test's two, what the app's leader may have queued itself (the next forecast
    # run, keyed: at most one) by the time of the scrape.
    assert value(samples, "storekeeper_jobs", state="queued") in (2, 3)


def test_metrics_need_the_bearer_token_when_one_is_configured(settings: Settings) -> None:
    token = uuid.uuid4().hex
    container = bootstrap(settings.model_copy(update={"metrics_token": SecretStr(token)}))
    try:
        with TestClient(create_app(container=container)) as client:
            for wrong in ({}, {"Authorization": "Bearer nope"}, {"Authorization": token}):
                r = client.get("/metrics", headers=wrong)
                assert (r.status_code, r.json()["code"]) == (401, "not_authenticated")
            scrape(client, Authorization=f"Bearer {token}")
    finally:
        container.close()


def test_a_request_id_is_echoed_or_generated(client: TestClient) -> None:
    mine = f"req-{uuid.uuid4().hex}"
    assert client.get("/healthz", headers={"X-Request-ID": mine}).headers["x-request-id"] == mine
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 32 and generated != mine
    # An id that could forge log lines or flood them is replaced, not echoed.
    forged = client.get("/healthz", headers={"X-Request-ID": "a b\tc" + "x" * 200})
    assert forged.headers["x-request-id"] != "a b\tc" + "x" * 200
    # Errors carry it too.
    assert "x-request-id" in client.get("/api/v1/nothing").headers


def test_readyz_reports_each_check(client: TestClient) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {"database": "ok", "migrations": "ok"}


@pytest.fixture
def behind(settings: Settings) -> Iterator[Settings]:
    """Settings whose database is one migration behind this code."""
    url = settings.effective_database_url
    command.downgrade(migrations.alembic_config(url), "-1")
    yield settings
    migrations.upgrade(url)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_readyz_is_503_while_migrations_are_behind(behind: Settings, tmp_path: Path) -> None:
    container = bootstrap(behind)
    try:
        with TestClient(create_app(container=container)) as client:
            r = client.get("/readyz")
            assert r.status_code == 503, r.text
            body = r.json()
            assert body["code"] == "not_ready" and "migrations" in body["detail"]
            assert body["checks"]["database"] == "ok"
            assert "code expects" in body["checks"]["migrations"]
            migrations.upgrade(behind.effective_database_url)
            assert client.get("/readyz").status_code == 200
    finally:
        container.close()
