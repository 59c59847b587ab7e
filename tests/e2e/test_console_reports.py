"""The console's report pages over HTTP: a table, a chart's data and a CSV link per report, for
managers and admins only; bad parameters are a page in words."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import Container
from storekeeper.events.relay import local_delivery, relay_once
from tests.conftest import Actor, Actors
from tests.console_support import sign_in
from tests.shop import add_product, add_warehouses

PAGES = (
    "/reports/sales",
    "/reports/dead-stock?days=30",
    "/reports/low-stock",
    "/reports/stock-history/TEA",
    "/reports/valuation",
    "/reports/abc",
)


@pytest.fixture
def shop(client: TestClient, container: Container, manager: Actor) -> None:
    add_warehouses(client, manager.headers)
    add_product(client, manager.headers, "TEA", price_cents=500)
    add_product(client, manager.headers, "MUG", price_cents=900, stock={"HAM": 3})  # never sold
    for body in (
        {"delta": 10, "reason": "receipt", "unit_cost_cents": 200},
        {"delta": -4, "reason": "sale"},
    ):
        r = client.post(
            "/api/v1/stock/movements",
            headers=manager.headers,
            json={"sku": "TEA", "warehouse": "BER", **body},
        )
        assert r.status_code == 201, r.text
    while relay_once(container.db, local_delivery(container.db, container.consumers)):
        pass


@pytest.mark.parametrize("path", PAGES)
def test_each_report_page_has_a_table_a_chart_and_its_csv(
    client: TestClient, manager: Actor, shop: None, path: str
) -> None:
    browser = sign_in(client.app, manager)  # type: ignore[arg-type]

    page = browser.get(path)

    assert page.status_code == 200, page.text
    assert '<table class="report">' in page.text
    assert 'id="chart-data"' in page.text
    assert 'href="/reports"' in page.text  # in the menu
    csv_link = page.text.split('class="button" href="', 1)[1].split('"', 1)[0]
    download = browser.get(csv_link.replace("&amp;", "&"))
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert len(list(csv.reader(io.StringIO(download.text)))) >= 2


def test_report_pages_are_for_managers_and_admins(
    client: TestClient, actors: Actors, shop: None
) -> None:
    clerk = sign_in(client.app, actors.make(Role.CLERK))  # type: ignore[arg-type]
    admin = sign_in(client.app, actors.make(Role.ADMIN))  # type: ignore[arg-type]

    assert clerk.get("/reports/sales").status_code == 403
    assert 'href="/reports"' not in clerk.get("/account").text
    assert admin.get("/reports/valuation").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/reports/sales?since=2026-05-02&until=2026-05-01",
        "/reports/valuation?at=9999-12-31",
        "/reports/dead-stock?days=0",
        "/reports/abc?since=someday",
    ],
)
def test_bad_report_parameters_are_a_page_in_words(
    client: TestClient, manager: Actor, path: str
) -> None:
    page = sign_in(client.app, manager).get(path)  # type: ignore[arg-type]

    assert page.status_code == 422
    assert page.headers["content-type"].startswith("text/html")
