"""The demand forecast end to end: a real ledger built through the inventory service (on SQLite
and PostgreSQL), the run, ``GET /reports/reorder-points`` and the ``storekeeper forecast run``
command."""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from storekeeper.accounts.domain import Role
from storekeeper.api.app import create_app
from storekeeper.bootstrap import Container, bootstrap
from storekeeper.config import Settings
from storekeeper.reporting.forecast import service, suggestions
from storekeeper.reporting.forecast.handlers import run_forecast
from storekeeper.reporting.forecast.models import ReorderPoint
from tests.compute_cluster import Cluster, dask_cluster
from tests.conftest import Actor, Actors
from tests.console_support import sign_in
from tests.e2e.api_support import API, assert_error
from tests.forecast_shop import DAYS, SINCE, TODAY, build_ledger
from tests.processes import free_port
from tests.shop import add_product, add_warehouses


@pytest.fixture
def shop(client: TestClient, manager: Actor, container: Container) -> TestClient:
    """BER, HAM and MUC, TEA and MUG, and their ledger over 90 days."""
    add_warehouses(client, manager.headers)
    add_product(client, manager.headers, "TEA")
    add_product(client, manager.headers, "MUG")
    build_ledger(container)
    return client


def _settings(container: Container, **changes: object) -> Settings:
    return container.settings.model_copy(
        update={"forecast_history_days": DAYS, "forecast_lead_times": "BER=5", **changes}
    )


def test_the_run_sets_reorder_points_from_the_ledger_corrected_for_stock_outs(
    shop: TestClient, container: Container, manager: Actor
) -> None:
    summary = run_forecast(container.db, settings=_settings(container), today=TODAY)
    assert (summary.series, summary.since, summary.until) == (2, SINCE, TODAY - timedelta(days=1))
    r = shop.get(f"{API}/reports/reorder-points", headers=manager.headers)
    assert r.status_code == 200, r.text
    items = {(i["sku"], i["warehouse"]): i for i in r.json()["items"]}
    tea = items["TEA", "BER"]
    # Sold out for ten days: those days are left out, so the rate stays 3 (not 2.5).
    assert tea["censored_days"] == 10
    assert tea["forecast_daily"] == pytest.approx(3.0)
    assert tea["mae"] == pytest.approx(0.0, abs=1e-9)
    # Lead time 5 days at BER (override), service level 0.95, no forecast error: 3 x 5.
    assert (tea["lead_time_days"], tea["service_level"]) == (5, 0.95)
    assert (tea["safety_stock"], tea["reorder_point"]) == (0, 15)
    mug = items["MUG", "HAM"]
    assert mug["lead_time_days"] == 7 and mug["censored_days"] == 0
    assert 0.2 < mug["forecast_daily"] < 0.6  # 2 every 5 days = 0.4
    assert mug["safety_stock"] > 0 and mug["reorder_point"] > mug["safety_stock"]
    assert mug["method"] and mug["mase"] is not None


def test_a_second_run_replaces_the_first(shop: TestClient, container: Container) -> None:
    settings = _settings(container)
    run_forecast(container.db, settings=settings, today=TODAY)
    run_forecast(container.db, settings=settings, today=TODAY + timedelta(days=400))
    # A window with no sale at all: the series are still there (stock on hand), and their
    # forecast says nothing sells any more.
    with container.db.reading() as session:
        points = list(session.scalars(select(ReorderPoint)))
    assert {(p.sku, p.warehouse) for p in points} == {("TEA", "BER"), ("MUG", "HAM")}
    assert all(p.forecast_daily == 0 and p.reorder_point == 0 for p in points)


def test_purchase_suggestions_list_series_below_their_reorder_point(
    shop: TestClient, container: Container
) -> None:
    run_forecast(container.db, settings=_settings(container), today=TODAY)
    with container.db.reading() as session:
        found = suggestions.purchase_suggestions(session, cover_days=14)
    assert [(s.point.sku, s.point.warehouse) for s in found] == [("MUG", "HAM")]
    mug = found[0]
    assert mug.available == 1 and mug.name == "Product MUG"
    up_to = mug.point.reorder_point + math.ceil(mug.point.forecast_daily * 14)
    assert (mug.order_up_to, mug.quantity) == (up_to, up_to - 1)


@pytest.fixture
def filled(shop: TestClient, container: Container) -> TestClient:
    """The shop after a forecast run."""
    run_forecast(container.db, settings=_settings(container), today=TODAY)
    return shop


@pytest.mark.parametrize("role", [Role.ADMIN, Role.MANAGER])
def test_managers_and_admins_read_reorder_points(
    filled: TestClient, actors: Actors, role: Role
) -> None:
    r = filled.get(f"{API}/reports/reorder-points", headers=actors.make(role).headers)
    assert r.status_code == 200 and len(r.json()["items"]) == 2


@pytest.mark.parametrize("role", [Role.CLERK, Role.CUSTOMER, Role.DEVICE])
def test_other_roles_may_not_read_reorder_points(
    filled: TestClient, actors: Actors, role: Role
) -> None:
    r = filled.get(f"{API}/reports/reorder-points", headers=actors.make(role).headers)
    assert_error(r, 403)


def test_reorder_points_need_a_sign_in(filled: TestClient) -> None:
    assert_error(filled.get(f"{API}/reports/reorder-points"), 401)


def test_reorder_points_filter_by_warehouse_and_page(filled: TestClient, manager: Actor) -> None:
    url = f"{API}/reports/reorder-points"
    r = filled.get(url, params={"warehouse": "HAM"}, headers=manager.headers)
    assert [i["sku"] for i in r.json()["items"]] == ["MUG"]
    first = filled.get(url, params={"limit": 1}, headers=manager.headers).json()
    assert [i["warehouse"] for i in first["items"]] == ["BER"] and first["next_cursor"]
    second = filled.get(
        url, params={"limit": 1, "cursor": first["next_cursor"]}, headers=manager.headers
    ).json()
    assert [i["warehouse"] for i in second["items"]] == ["HAM"]
    assert second["next_cursor"] is None


def test_reorder_points_export_as_csv(filled: TestClient, manager: Actor) -> None:
    r = filled.get(
        f"{API}/reports/reorder-points", params={"format": "csv"}, headers=manager.headers
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="reorder-points.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert (rows[0]["sku"], rows[0]["warehouse"], rows[0]["reorder_point"]) == (
        "TEA",
        "BER",
        "15",
    )
    assert len(rows) == 2 and "forecast_daily" in rows[0] and "mase" in rows[0]


@pytest.mark.parametrize(
    "params",
    [
        {"warehouse": "no such!"},
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "many"},
        {"cursor": "@@@"},
        {"cursor": "bm90IG91cnM"},  # base64 of "not ours": no warehouse/SKU pair
        {"format": "xml"},
        {"warehouse": "x" * 40},
    ],
)
def test_bad_query_values_are_422_not_500(
    filled: TestClient, manager: Actor, params: dict[str, str]
) -> None:
    r = filled.get(f"{API}/reports/reorder-points", params=params, headers=manager.headers)
    assert_error(r, 422)


# --- on a cluster -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A Dask scheduler and two workers for this module."""
    with dask_cluster(tmp_path_factory.mktemp("dask"), workers=2) as running:
        yield running


def _stored(container: Container) -> list[tuple[object, ...]]:
    with container.db.reading() as session:
        rows = session.scalars(select(ReorderPoint).order_by(ReorderPoint.sku)).all()
        return [
            tuple(
                getattr(row, c.key)
                for c in ReorderPoint.__table__.columns
                if c.key != "computed_at"
            )
            for row in rows
        ]


def test_the_job_on_the_cluster_stores_what_it_stores_locally(
    shop: TestClient, container: Container, cluster: Cluster
) -> None:
    run_forecast(container.db, settings=_settings(container), today=TODAY)
    local = _stored(container)
    summary = run_forecast(
        container.db,
        settings=_settings(container, compute_url=cluster.address, forecast_block_series=1),
        today=TODAY,
    )
    assert summary.engine == f"dask {cluster.address}"
    assert _stored(container) == local and len(local) == 2


# --- the command --------------------------------------------------------------------------------


def _command(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = shutil.which("storekeeper", path=str(Path(sys.executable).parent))
    assert script is not None
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("STOREKEEPER_")}
    return subprocess.run(
        [script, *args],
        env={**inherited, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb", **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_forecast_run_command_computes_and_stores_at_once(tmp_path: Path) -> None:
    env = {
        "STOREKEEPER_DATA_DIR": str(tmp_path / "data"),
        "STOREKEEPER_FORECAST_HISTORY_DAYS": "400",
    }
    assert _command("migrate", env=env).returncode == 0
    settings = Settings(data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]
    container = bootstrap(settings)
    try:
        with TestClient(create_app(container=container)) as client:
            admin = Actors(container).make(Role.ADMIN)
            add_warehouses(client, admin.headers)
            add_product(client, admin.headers, "TEA")
            add_product(client, admin.headers, "MUG")
        build_ledger(container)
    finally:
        container.close()
    result = _command("forecast", "run", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "forecast done: 2 series" in result.stdout
    assert "Methods chosen by" in result.stdout
    container = bootstrap(settings)
    try:
        with container.db.reading() as session:
            points, _ = service.list_reorder_points(session)
    finally:
        container.close()
    assert {(p.sku, p.warehouse) for p in points} == {("TEA", "BER"), ("MUG", "HAM")}


def test_forecast_run_names_a_bad_cluster_address_without_a_traceback(tmp_path: Path) -> None:
    env = {"STOREKEEPER_DATA_DIR": str(tmp_path / "data")}
    result = _command("forecast", "run", "--compute-url", "http://nowhere", env=env)
    assert result.returncode == 2
    assert "STOREKEEPER_COMPUTE_URL" in result.stderr and "Traceback" not in result.stderr


# --- the console page ---------------------------------------------------------------------------


def test_the_purchase_suggestions_page_lists_what_to_order(
    filled: TestClient, manager: Actor
) -> None:
    browser = sign_in(filled.app, manager)  # type: ignore[arg-type]
    page = browser.get("/purchase-suggestions")
    assert page.status_code == 200, page.text
    assert 'href="/purchase-suggestions"' in page.text  # in the menu
    assert "1 product below the reorder point" in page.text
    assert "<code>MUG</code>" in page.text and "<code>TEA</code>" not in page.text
    assert "Nothing is below" in browser.get("/purchase-suggestions?warehouse=BER").text
    download = browser.get("/purchase-suggestions?format=csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert [(r["sku"], r["warehouse"], r["available"]) for r in rows] == [("MUG", "HAM", "1")]
    assert int(rows[0]["suggested_order"]) == int(rows[0]["order_up_to"]) - 1


def test_clerks_do_not_see_purchase_suggestions(filled: TestClient, actors: Actors) -> None:
    clerk = actors.make(Role.CLERK, warehouses=["HAM"])
    browser = sign_in(filled.app, clerk)  # type: ignore[arg-type]
    assert browser.get("/purchase-suggestions").status_code == 403
    assert 'href="/purchase-suggestions"' not in browser.get("/").text


def test_purchase_suggestions_before_any_run_say_so(shop: TestClient, manager: Actor) -> None:
    page = sign_in(shop.app, manager).get("/purchase-suggestions")  # type: ignore[arg-type]
    assert page.status_code == 200 and "No forecast has run yet" in page.text


def test_forecast_run_says_when_the_cluster_cannot_be_reached(tmp_path: Path) -> None:
    env = {"STOREKEEPER_DATA_DIR": str(tmp_path / "data")}
    nowhere = f"tcp://127.0.0.1:{free_port()}"
    result = _command("forecast", "run", "--compute-url", nowhere, env=env)
    assert result.returncode == 1
    assert f"cannot reach the compute cluster at {nowhere}" in result.stderr
    assert "Traceback" not in result.stderr
